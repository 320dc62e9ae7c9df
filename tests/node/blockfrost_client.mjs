// The real @blockfrost/blockfrost-js, as a dApp's server would use it behind corral: a
// customBackend URL and, normally, no projectId at all (corral attaches the key).
// Driven by tests/integration/test_blockfrost_client.py.
//
//   node blockfrost_client.mjs tour  --url URL --address ADDR --stake STAKE [options]
//     root, health, blocksLatest, epochsLatest, addresses, one page of addressesUtxos,
//     addressesUtxosAll (asc and desc), accountsAddressesAll and txs; prints one JSON line
//     {ok: true, ...results}; on the first failure {ok: false, error} and exit 1.
//   node blockfrost_client.mjs burst --url URL --n N [options]
//     N blocksLatest calls one after the other; prints {statuses: [...], errors: [...]}.
// Options: --project-id ID (the client's own key; left out: none is sent), --ca FILE (a CA
// for an https URL), --batch-size N (the ...All helpers' parallel pages), --retries N
// (the library's retries on 429/5xx; default 0, so every answer is seen as it came).
import { readFileSync } from 'node:fs';
import { BlockFrostAPI } from '@blockfrost/blockfrost-js';

function args(argv) {
  const out = { mode: argv[0] };
  for (let i = 1; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  return out;
}

function describe(e) {
  // BlockfrostServerError carries the answer's status_code/error/message; a client error
  // (refused, TLS) its code.
  return { name: e.name, status_code: e.status_code, error: e.error, message: e.message,
           code: e.code };
}

function client(a) {
  const options = {
    customBackend: a.url,
    retrySettings: { limit: Number(a.retries ?? 0) },
    requestTimeout: 10000,
  };
  if (a['project-id']) options.projectId = a['project-id'];
  if (a.ca) options.gotOptions = { https: { certificateAuthority: readFileSync(a.ca) } };
  return new BlockFrostAPI(options);
}

async function tour(api, a) {
  const batchSize = Number(a['batch-size'] ?? 1);
  const r = {};
  r.root = await api.root();
  r.health = await api.health();
  r.blocksLatest = await api.blocksLatest();
  r.epochsLatest = await api.epochsLatest();
  r.address = await api.addresses(a.address);
  r.utxosPage = await api.addressesUtxos(a.address, { page: 2, count: 10, order: 'desc' });
  r.utxosAll = await api.addressesUtxosAll(a.address, { batchSize });
  r.utxosAllDesc = await api.addressesUtxosAll(a.address, { batchSize, order: 'desc' });
  r.accountAddressesAll = await api.accountsAddressesAll(a.stake, { batchSize });
  r.tx = await api.txs(r.utxosAll[0].tx_hash);
  return r;
}

async function burst(api, a) {
  const statuses = [];
  const errors = [];
  for (let i = 0; i < Number(a.n); i++) {
    try {
      await api.blocksLatest();
      statuses.push(200);
    } catch (e) {
      statuses.push(e.status_code ?? 0);
      errors.push(describe(e));
    }
  }
  return { statuses, errors };
}

// Exits once the line is written: process.exit() right after a large write to a pipe
// would cut it short; exiting at all stops the library's rate-limiter timer.
function finish(obj, code) {
  process.stdout.write(JSON.stringify(obj) + '\n', () => process.exit(code));
}

const a = args(process.argv.slice(2));
try {
  const api = client(a);
  if (a.mode === 'tour') {
    finish({ ok: true, ...(await tour(api, a)) }, 0);
  } else if (a.mode === 'burst') {
    finish(await burst(api, a), 0);
  } else {
    throw new Error(`unknown mode ${a.mode}`);
  }
} catch (e) {
  finish({ ok: false, error: describe(e) }, 1);
}
