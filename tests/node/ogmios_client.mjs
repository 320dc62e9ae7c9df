// Drives the real @cardano-ogmios/client (npm, pinned in package-lock.json) the way a dApp
// does: createInteractionContext (which first GETs <http>/health and refuses if the answer
// is not 2xx or its lastTipUpdate is null) -> a ledger-state query client or a chain-sync
// client on one WebSocket. tests/integration/test_ogmios_client.py runs it through corral.
//
//   node ogmios_client.mjs MODE --url http://127.0.0.1:PORT/s/USER/ogmios [options]
//
// --url is the http address; the webSocket address is the same with ws:. Modes:
//   query      networkTip, ledgerTip, epoch, protocolParameters, acquire/release; prints
//              one JSON object
//   chainsync  findIntersection at origin, --blocks N blocks forward (nextBlock), then a
//              second findIntersection at the last block seen and N more blocks; one object
//   hold       networkTip, prints {"event":"ready",...}, then waits (up to --timeout-ms) for
//              the socket to close and prints {"event":"closed","code":C,...}
// Every object has "backend": the X-Backend header of the WebSocket's 101 (the simulated
// Ogmios names itself there); query's also has "health", the /health document (read again
// after the library's own pre-check passed).
// Exit status: 0 success, 1 a library call failed (the error is printed as
// {"error":...}), 2 bad usage, 3 hold timed out without a close.
import WebSocket from 'ws';
import {
  createInteractionContext,
  createLedgerStateQueryClient,
  createChainSynchronizationClient,
  getServerHealth,
} from '@cardano-ogmios/client';

function parseArgs(argv) {
  const out = {mode: argv[0], url: null, blocks: 10, timeoutMs: 20000};
  for (let i = 1; i < argv.length; i += 2) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (k === '--url') out.url = v;
    else if (k === '--blocks') out.blocks = Number(v);
    else if (k === '--timeout-ms') out.timeoutMs = Number(v);
    else return null;
  }
  if (!['query', 'chainsync', 'hold'].includes(out.mode) || !out.url) return null;
  return out;
}

// The library hides the handshake's answer; its socket is the `ws` package's WebSocket
// (isomorphic-ws re-exports it), which emits 'upgrade' with the 101 response before
// 'open'. Recording the header there observes without changing what the library does.
const backends = new WeakMap();
const emit = WebSocket.prototype.emit;
WebSocket.prototype.emit = function (event, ...args) {
  if (event === 'upgrade' && args[0]?.headers) backends.set(this, args[0].headers['x-backend']);
  return emit.call(this, event, ...args);
};

function print(obj) {
  process.stdout.write(JSON.stringify(obj, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) +
                       '\n');
}

function describe(e) {
  if (e instanceof Error) return {name: e.constructor?.name, message: e.message, code: e.code};
  return e;  // a JSON-RPC error response the library rejected with
}

// Opens the context. `onClose` receives the socket's close code and reason.
async function connect(url, onClose) {
  const connection = {address: {http: url, webSocket: url.replace(/^http/, 'ws')}};
  const context = await createInteractionContext(
      (err) => print({event: 'socket-error', error: describe(err)}),
      (code, reason) => onClose(code, reason.toString()),
      {connection});
  return context;
}

async function query(args) {
  const context = await connect(args.url, () => {});
  // What the library's own pre-check read, read again for the report.
  const health = await getServerHealth({connection: context.connection});
  const client = await createLedgerStateQueryClient(context);
  const networkTip = await client.networkTip();
  const ledgerTip = await client.ledgerTip();
  const epoch = await client.epoch();
  const protocolParameters = await client.protocolParameters();
  await client.acquireLedgerState(ledgerTip);
  const acquiredTip = await client.ledgerTip();
  await client.releaseLedgerState();
  const backend = backends.get(context.socket);
  await client.shutdown();
  print({mode: 'query', backend, health, networkTip, ledgerTip, acquiredTip, epoch,
         protocolParameters});
}

// Follows the chain for `n` blocks from `points`; resolves with what it saw.
function follow(client, points, n) {
  return new Promise((resolve, reject) => {
    const seen = {rollbacks: [], blocks: []};
    client.__handlers.rollBackward = async ({point}, requestNext) => {
      seen.rollbacks.push(point);
      requestNext();
    };
    client.__handlers.rollForward = async ({block, tip}, requestNext) => {
      seen.blocks.push({slot: block.slot, id: block.id, height: block.height,
                        ancestor: block.ancestor});
      seen.tip = tip;
      if (seen.blocks.length < n) requestNext();
      else resolve(seen);
    };
    // One nextBlock in flight: each answer asks for the next, so none is left over.
    client.resume(points, 1).then((i) => { seen.intersection = i.intersection; }, reject);
  });
}

async function chainsync(args) {
  const handlers = {};
  const context = await connect(args.url, () => {});
  const client = await createChainSynchronizationClient(context, {
    rollBackward: (x, next) => handlers.rollBackward(x, next),
    rollForward: (x, next) => handlers.rollForward(x, next),
  });
  client.__handlers = handlers;
  const first = await follow(client, ['origin'], args.blocks);
  const last = first.blocks[first.blocks.length - 1];
  const second = await follow(client, [{slot: last.slot, id: last.id}], args.blocks);
  const backend = backends.get(context.socket);
  await client.shutdown();
  print({mode: 'chainsync', backend, first, second});
}

async function hold(args) {
  let closed;
  const done = new Promise((resolve) => { closed = resolve; });
  const context = await connect(args.url, (code, reason) => closed({code, reason}));
  const client = await createLedgerStateQueryClient(context);
  const networkTip = await client.networkTip();
  const backend = backends.get(context.socket);
  print({event: 'ready', backend, networkTip});
  const timer = setTimeout(() => closed(null), args.timeoutMs);
  const c = await done;
  clearTimeout(timer);
  if (c === null) {
    print({event: 'timeout', backend});
    process.exit(3);
  }
  print({event: 'closed', backend, code: c.code, reason: c.reason});
}

const args = parseArgs(process.argv.slice(2));
if (!args) {
  process.stderr.write('usage: node ogmios_client.mjs query|chainsync|hold --url URL ' +
                       '[--blocks N] [--timeout-ms MS]\n');
  process.exit(2);
}
try {
  await {query, chainsync, hold}[args.mode](args);
  process.exit(0);
} catch (e) {
  print({error: describe(e)});
  process.exit(1);
}
