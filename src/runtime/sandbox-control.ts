/**
 * The supervisor's end of one sandbox process's control channel: the messages the process sends
 * about its instances (control-messages.ts), its one hello, the answers to liveness pings
 * (liveness.ts). The process is untrusted: once it broke a rule it is ended, and nothing more it
 * says is acted on — not even the frames that came in the same read as the one that ended it.
 */
import type { ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { ControlChannel, MAX_CONTROL_FROM_SANDBOX, SANDBOX_CONTROL_BUDGET } from '../sandbox/control.js';
import type { FromSandbox, ToSandbox } from '../sandbox/protocol.js';
import { onControlMessage, type ProcessInstances } from './control-messages.js';
import { Liveness } from './liveness.js';
import type { SandboxEvents } from './sandbox.js';

/** Opens the control channel of a process just spawned; `end` kills it with a reason, `booted` is told of its first message. */
export function superviseControl(
  child: ChildProcess,
  socket: Socket,
  instances: ProcessInstances,
  events: SandboxEvents,
  end: (why: string) => void,
  booted: () => void,
): ControlChannel<FromSandbox, ToSandbox> {
  let ended = false;
  const kill = (why: string) => {
    if (ended) return;
    ended = true;
    end(why);
  };
  let greeted = 0;
  const control = new ControlChannel<FromSandbox, ToSandbox>(
    socket,
    (m) => {
      if (ended) return;
      booted();
      liveness.heard();
      const type = (m as { type?: unknown } | null)?.type;
      // A process says hello once, when it boots.
      if (type === 'hello' && greeted++ > 0) return kill('a second hello');
      if (type === 'pong') {
        if (!liveness.answer((m as { seq?: unknown }).seq)) kill('a pong for no ping');
        return;
      }
      onControlMessage(m, instances, events, kill);
    },
    kill,
    MAX_CONTROL_FROM_SANDBOX,
    SANDBOX_CONTROL_BUDGET,
  );
  // Without its control channel the process cannot be told to stop anything: it is ended.
  control.onClose(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const liveness = new Liveness(
    (seq) => control.send({ type: 'ping', seq }),
    // Not before it booted: its start has its own, longer wait (a busy host may take a while).
    () => greeted > 0 && instances.running.size + instances.starting.size > 0,
    (why) => {
      // Its requests in flight are told why, not "crashed".
      for (const r of instances.running.values())
        r.channel.setFate({ code: 'ERR_FUNCTION_CRASHED', message: `its sandbox process was ended: ${why}` });
      kill(why);
    },
  );
  child.once('exit', () => liveness.stop());
  return control;
}
