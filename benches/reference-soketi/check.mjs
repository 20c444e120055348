// Checks a running Pusher protocol 7 server the way pusher-js and the `pusher` server library
// talk to it: connect, subscribe to a public and a private channel (auth signed here), an HTTP
// trigger reaching the public channel, a client event reaching another subscriber of the
// private one. Uses `ws` and `pusher`, which Soketi's own dependencies bring.
//
//   node check.mjs http://127.0.0.1:6001 APP_ID KEY SECRET
//   node check.mjs http://127.0.0.1:6001,http://127.0.0.1:6002 ...   the second client on the
//                                     second node, the trigger to the first: deliveries cross
import { createHmac } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const WebSocket = require('ws');
const Pusher = require('pusher');

const [bases, appId, key, secret] = process.argv.slice(2);
const urls = bases.split(',').map((b) => new URL(b));
const wsUrl = (u) => `ws://${u.host}/app/${key}?protocol=7&client=js&version=8.6.0&flash=false`;
const fail = (why) => { console.error(`FAIL: ${why}`); process.exit(1); };
setTimeout(() => fail('timed out'), 10_000).unref();

function client(u) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(u));
    const frames = [];
    const waiters = [];
    ws.on('message', (raw) => {
      const f = JSON.parse(raw.toString());
      frames.push(f);
      for (const w of waiters.splice(0)) w();
    });
    ws.on('error', reject);
    const next = async (pred) => {
      for (;;) {
        const i = frames.findIndex(pred);
        if (i >= 0) return frames.splice(i, 1)[0];
        await new Promise((r) => waiters.push(r));
      }
    };
    ws.on('open', async () => {
      const est = await next((f) => f.event === 'pusher:connection_established');
      resolve({ ws, next, socketId: JSON.parse(est.data).socket_id });
    });
  });
}
const send = (c, event, data, channel) => c.ws.send(JSON.stringify({ event, data, channel }));
const auth = (socketId, channel) =>
  `${key}:${createHmac('sha256', secret).update(`${socketId}:${channel}`).digest('hex')}`;
const subscribed = (ch) => (f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === ch;

const a = await client(urls[0]);
const b = await client(urls[urls.length - 1]);
if (!/^\d+\.\d+$/.test(a.socketId)) fail(`socket id ${a.socketId}`);
for (const c of [a, b]) {
  send(c, 'pusher:subscribe', { channel: 'public-check' });
  send(c, 'pusher:subscribe', { channel: 'private-check', auth: auth(c.socketId, 'private-check') });
  await c.next(subscribed('public-check'));
  await c.next(subscribed('private-check'));
}
const pusher = new Pusher({ appId, key, secret, host: urls[0].hostname, port: urls[0].port, useTLS: false });
await pusher.trigger('public-check', 'greet', { t: 1 });
const got = await b.next((f) => f.event === 'greet');
if (JSON.parse(got.data).t !== 1) fail(`trigger data ${got.data}`);
send(a, 'client-ping', JSON.stringify({ t: 2 }), 'private-check');
const ce = await b.next((f) => f.event === 'client-ping');
if (ce.channel !== 'private-check') fail(`client event ${JSON.stringify(ce)}`);
send(a, 'pusher:ping', {});
await a.next((f) => f.event === 'pusher:pong');
console.log(`ok: ${urls.map(wsUrl).join(', ')} (socket ids ${a.socketId}, ${b.socketId})`);
a.ws.close(); b.ws.close();
process.exit(0);
