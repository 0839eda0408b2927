// Prints the platform's custom search attributes, one NAME=Type per line, for shell scripts (stack/temporal.sh).
import { cliSearchAttributes } from '../contracts/search-attributes.ts';

process.stdout.write(`${cliSearchAttributes().join('\n')}\n`);
