// A client of mcp-runtime's demo app on the official TypeScript SDK, run by tests/runtime/test_foreign_clients.py
// against replicas behind a balancer with no affinity (tests/support/http_balancer.py).
//
//   node client.ts --url http://127.0.0.1:PORT/mcp --checks counter,elicitation,notifications,get-resume,post-resume,delete
//
// Writes one JSON object a line on stdout: {"check", "ok", "detail"} per check, {"pause": what} where the test
// must act or check (its GET stream open, kill a replica, arm a cut) before the client goes on (it waits for a
// line on stdin), and last {"summary": ...}. Exits 1 when a check failed, 2 on bad arguments.
import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CallToolResultSchema,
  ElicitRequestSchema,
  ResourceUpdatedNotificationSchema,
  type CallToolResult,
  type JSONRPCMessage
} from '@modelcontextprotocol/sdk/types.js';

const PROTOCOL_VERSION = '2025-11-25';
const CHECKS = ['counter', 'elicitation', 'notifications', 'get-resume', 'post-resume', 'delete'] as const;
type CheckName = (typeof CHECKS)[number];

class CheckFailed extends Error {}

function emit(value: object): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}

const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function pause(what: string): Promise<void> {
  emit({ pause: what });
  const line = await stdinLines.next();
  if (line.done) throw new CheckFailed(`stdin closed while paused for ${what}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(what: string, ms: number, done: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new CheckFailed(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

function resultValue(result: CallToolResult): unknown {
  if (result.isError) {
    const text = result.content.map((c) => (c.type === 'text' ? c.text : c.type)).join(' ');
    throw new CheckFailed(`the tool answered with an error: ${text}`);
  }
  const structured = result.structuredContent as { result?: unknown } | undefined;
  if (structured && 'result' in structured) return structured.result;
  const first = result.content[0];
  return first?.type === 'text' ? first.text : undefined;
}

// One session of the demo app: the SDK's client on its Streamable HTTP transport, answering elicitations,
// counting the notifications it hears and the responses it is given per request id.
class Session {
  readonly client: Client;
  readonly transport: StreamableHTTPClientTransport;
  readonly updates: string[] = [];
  readonly responses = new Map<string | number, number>();
  readonly errors: string[] = [];

  readonly url: string;

  constructor(url: string) {
    this.url = url;
    this.client = new Client({ name: 'mcp-fleet-ts-client', version: '1.0.0' }, { capabilities: { elicitation: {} } });
    this.transport = new StreamableHTTPClientTransport(new URL(url), {
      reconnectionOptions: {
        initialReconnectionDelay: 500,
        maxReconnectionDelay: 2000,
        reconnectionDelayGrowFactor: 1.5,
        maxRetries: 5
      }
    });
    this.client.setRequestHandler(ElicitRequestSchema, async (request) => {
      const params = request.params as { message: string; requestedSchema?: { properties?: object } };
      const field = Object.keys(params.requestedSchema?.properties ?? {})[0] ?? 'answer';
      return { action: 'accept', content: { [field]: `answer to ${params.message}` } };
    });
    this.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (notification) => {
      this.updates.push(notification.params.uri);
    });
    this.client.onerror = (error) => {
      this.errors.push(String(error));
    };
  }

  async connect(): Promise<void> {
    await this.client.connect(this.transport);
    if (this.transport.protocolVersion !== PROTOCOL_VERSION) {
      throw new CheckFailed(`negotiated protocol ${this.transport.protocolVersion}, wanted ${PROTOCOL_VERSION}`);
    }
    const handler = this.transport.onmessage;
    this.transport.onmessage = (message: JSONRPCMessage) => {
      if ('id' in message && message.id !== undefined && ('result' in message || 'error' in message)) {
        this.responses.set(message.id, (this.responses.get(message.id) ?? 0) + 1);
      }
      handler?.(message);
    };
  }

  async call(name: string, args: Record<string, unknown>, timeout = 15000): Promise<unknown> {
    const result = await this.client.callTool({ name, arguments: args }, CallToolResultSchema, { timeout });
    return resultValue(result as CallToolResult);
  }

  // Subscribes to demo://note when the server offers subscriptions (the runtime sends the update to the
  // session's GET stream either way).
  async subscribeNote(): Promise<boolean> {
    if (!this.client.getServerCapabilities()?.resources?.subscribe) return false;
    await this.client.subscribeResource({ uri: 'demo://note' });
    return true;
  }

  async noteUpdate(text: string, ms = 10000): Promise<void> {
    const before = this.updates.length;
    const answer = await this.call('note_set', { text });
    if (answer !== text) throw new CheckFailed(`note_set answered ${JSON.stringify(answer)}`);
    await waitFor(`notifications/resources/updated for demo://note after note_set(${text})`, ms, () =>
      this.updates.slice(before).includes('demo://note')
    );
  }

  async close(): Promise<void> {
    await this.client.close().catch(() => undefined);
  }
}

async function counter(s: Session): Promise<string> {
  let previous = Number(await s.call('session_increment', {}));
  const seen = [previous];
  for (let i = 0; i < 6; i++) {
    const value = Number(await s.call('session_increment', {}));
    seen.push(value);
    if (value !== previous + 1) throw new CheckFailed(`session_increment went ${seen.join(', ')}`);
    previous = value;
  }
  return `session_increment: ${seen.join(', ')}`;
}

async function elicitation(s: Session): Promise<string> {
  const answers: unknown[] = [];
  for (const question of ['first question', 'second question', 'third question']) {
    const answer = await s.call('ask', { question });
    if (answer !== `answer to ${question}`) throw new CheckFailed(`ask(${question}) answered ${JSON.stringify(answer)}`);
    answers.push(answer);
  }
  return `ask answered ${JSON.stringify(answers)}`;
}

async function notifications(s: Session): Promise<string> {
  const subscribed = await s.subscribeNote();
  await pause('get-stream-open'); // the SDK opens its GET stream in the background: notifications go there
  await s.noteUpdate('one');
  await s.noteUpdate('two');
  return `resources/subscribe ${subscribed ? 'sent' : 'not offered'}; both updates heard`;
}

async function getResume(s: Session): Promise<string> {
  await s.subscribeNote();
  await pause('get-stream-open');
  await s.noteUpdate('before the kill');
  await pause('kill-get-stream-holder');
  await s.noteUpdate('after the kill', 20000);
  return 'the update sent after the GET stream was lost was heard';
}

async function postResume(s: Session): Promise<string> {
  await pause('cut-next-post-stream');
  const progress: number[] = [];
  const started = Date.now();
  const result = await s.client.callTool({ name: 'slow', arguments: { seconds: 3 } }, CallToolResultSchema, {
    timeout: 20000,
    onprogress: (p) => progress.push(p.progress)
  });
  const answer = resultValue(result as CallToolResult);
  if (answer !== 'waited 3s') throw new CheckFailed(`slow answered ${JSON.stringify(answer)}`);
  await sleep(1000); // a duplicate would come now
  const counts = [...s.responses.values()];
  const duplicates = counts.filter((n) => n > 1).length;
  if (duplicates) throw new CheckFailed(`a response arrived more than once: ${JSON.stringify([...s.responses])}`);
  return `slow answered once after ${Date.now() - started} ms, ${progress.length} progress notifications`;
}

async function remove(s: Session): Promise<string> {
  await s.call('session_increment', {});
  const session = s.transport.sessionId;
  if (!session) throw new CheckFailed('no session id');
  await s.transport.terminateSession();
  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) {
    // one request per replica: each goes to the next one
    const response = await fetch(s.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': session,
        'mcp-protocol-version': PROTOCOL_VERSION
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 900 + i, method: 'tools/call', params: { name: 'session_increment' } })
    });
    await response.body?.cancel();
    statuses.push(response.status);
  }
  if (statuses.some((status) => status !== 404)) {
    throw new CheckFailed(`requests after DELETE got ${statuses.join(', ')}, wanted 404 each`);
  }
  return `DELETE accepted; the session's requests then got ${statuses.join(', ')}`;
}

const RUN: Record<CheckName, (s: Session) => Promise<string>> = {
  counter,
  elicitation,
  notifications,
  'get-resume': getResume,
  'post-resume': postResume,
  delete: remove
};

function parseArgs(argv: string[]): { url: string; checks: CheckName[] } {
  let url = '';
  let checks: string[] = [...CHECKS];
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '--url') url = argv[i + 1] ?? '';
    else if (argv[i] === '--checks') checks = (argv[i + 1] ?? '').split(',').filter(Boolean);
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  const unknown = checks.filter((c) => !(CHECKS as readonly string[]).includes(c));
  if (!url || unknown.length) throw new Error(`usage: --url URL [--checks ${CHECKS.join(',')}] (unknown: ${unknown})`);
  return { url, checks: checks as CheckName[] };
}

async function main(): Promise<number> {
  let args: { url: string; checks: CheckName[] };
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
  }
  const passed: string[] = [];
  const failed: Record<string, string> = {};
  for (const check of args.checks) {
    const session = new Session(args.url);
    try {
      await session.connect();
      const detail = await RUN[check](session);
      passed.push(check);
      emit({ check, ok: true, detail });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const seen = session.errors.length ? ` (client errors: ${session.errors.slice(-3).join(' | ')})` : '';
      failed[check] = message + seen;
      emit({ check, ok: false, detail: failed[check] });
    } finally {
      await session.close();
    }
  }
  emit({ summary: { client: 'typescript-sdk', protocol: PROTOCOL_VERSION, passed, failed } });
  return Object.keys(failed).length ? 1 : 0;
}

process.exit(await main());
