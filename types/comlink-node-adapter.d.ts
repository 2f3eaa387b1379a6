// comlink ships this adapter without a declaration that NodeNext resolution can find.
declare module 'comlink/dist/esm/node-adapter.mjs' {
  import type { MessagePort, Worker } from 'node:worker_threads';
  import type { Endpoint } from 'comlink';
  export default function nodeEndpoint(source: MessagePort | Worker): Endpoint;
}
