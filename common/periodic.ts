// A task run now and then every `intervalMs` after the previous run ended (never two at once), on an unref'd timer
// so it never keeps a process alive. For the processes' pollers (Redis memory, stuck cases).
export interface Periodic {
  stop(): void;
}

export function every(intervalMs: number, task: () => Promise<void>): Periodic {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const round = () => {
    void task().catch(() => undefined).finally(() => {
      if (!stopped) timer = setTimeout(round, intervalMs).unref();
    });
  };
  timer = setTimeout(round, 0).unref();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
