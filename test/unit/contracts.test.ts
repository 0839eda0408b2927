// The contracts that live outside TypeScript agree with their one definition: the search attributes that
// docker-compose.yml registers (the local stack reads them from contracts/ itself, through scripts/).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { repoRoot } from '../../common/env.ts';
import { cliSearchAttributes } from '../../contracts/search-attributes.ts';

const compose = parse(readFileSync(`${repoRoot}docker-compose.yml`, 'utf8')) as { services: Record<string, { command?: string[] }> };

/** `--flag VALUE` pairs of a command line, in order. */
const values = (command: readonly string[], flag: string) => command.flatMap((arg, i) => (arg === flag ? [command[i + 1]!] : []));

describe('search attributes outside TypeScript', () => {
  const expected = cliSearchAttributes();

  it('when Compose starts the dev server, then it creates exactly the contract\'s attributes with their types', () => {
    expect(values(compose.services.temporal!.command!, '--search-attribute')).toStrictEqual(expected);
  });

  it('when Compose registers them again on a reused volume, then it names the same attributes and types', () => {
    const command = compose.services['temporal-init']!.command!;
    const names = values(command, '--name');
    const types = values(command, '--type');
    expect(names.map((n, i) => `${n}=${types[i]}`)).toStrictEqual(expected);
  });

  it('when the local stack asks for the list, then the script prints the contract\'s attributes', () => {
    const out = execFileSync(process.execPath, [`${repoRoot}scripts/search-attributes.ts`], { encoding: 'utf8' });
    expect(out.trim().split('\n')).toStrictEqual(expected);
  });
});
