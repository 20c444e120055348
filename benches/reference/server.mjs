// The reference: a minimal socket.io 4.8 server implementing the contract's chat:join and
// message:send the way Switchboard does (same rooms, acks and emitted events), WITHOUT
// persistence or membership checks — it is the Node baseline for benches/run.sh, not a product.
// HS256 tokens are verified like Switchboard's (signature and exp). With REDIS_URL it uses
// @socket.io/redis-adapter so two processes form a cluster.
//
//   PORT=3100 JWT_SECRET=... [REDIS_URL=redis://127.0.0.1:6379] node server.mjs
import { createServer } from 'node:http';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Server } from 'socket.io';

const port = Number(process.env.PORT ?? 3100);
const secret = process.env.JWT_SECRET ?? '';
if (!secret) throw new Error('JWT_SECRET is required');

function verify(token) {
  const parts = typeof token === 'string' ? token.split('.') : [];
  if (parts.length !== 3) return null;
  const header = JSON.parse(Buffer.from(parts[0], 'base64url').toString());
  if (header.alg !== 'HS256') return null;
  const want = createHmac('sha256', secret).update(`${parts[0]}.${parts[1]}`).digest();
  const got = Buffer.from(parts[2], 'base64url');
  if (got.length !== want.length || !timingSafeEqual(got, want)) return null;
  const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString());
  if (typeof claims.sub !== 'string' || !(claims.exp > Date.now() / 1000)) return null;
  return claims;
}

const http = createServer();
const io = new Server(http, { transports: ['websocket', 'polling'], maxHttpBufferSize: 2 * 1024 * 1024 });

if (process.env.REDIS_URL) {
  const { createClient } = await import('redis');
  const { createAdapter } = await import('@socket.io/redis-adapter');
  const pub = createClient({ url: process.env.REDIS_URL });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  io.adapter(createAdapter(pub, sub, { key: process.env.REDIS_PREFIX ?? 'bench-node' }));
}

io.use((socket, next) => {
  try {
    const claims = verify(socket.handshake.auth?.token);
    if (!claims) return next(new Error('UNAUTHORIZED'));
    socket.data.userId = claims.sub;
    return next();
  } catch {
    return next(new Error('UNAUTHORIZED'));
  }
});

const fail = (ack, message) => typeof ack === 'function' && ack({ ok: false, error: { code: 'INVALID_PAYLOAD', message } });

io.on('connection', (socket) => {
  const userId = socket.data.userId;
  socket.join(`user:${userId}`);

  socket.on('chat:join', (p, ack) => {
    if (!p || typeof p.chatId !== 'string') return fail(ack, 'chatId');
    socket.join(`chat:${p.chatId}`);
    const data = { chatId: p.chatId, projectId: p.projectId, participants: [], unreadCount: 0 };
    socket.emit('chat:joined', data);
    socket.to(`chat:${p.chatId}`).emit('user:online', { chatId: p.chatId, userId });
    if (typeof ack === 'function') ack({ ok: true, data });
  });

  socket.on('message:send', (p, ack) => {
    if (!p || typeof p.chatId !== 'string' || typeof p.content !== 'string') return fail(ack, 'chatId/content');
    const message = {
      id: randomBytes(12).toString('hex'),
      chatId: p.chatId,
      projectId: p.projectId,
      senderId: userId,
      type: p.type ?? 'text',
      content: p.content,
      replyTo: null,
      mentions: [],
      reactions: [],
      createdAt: new Date().toISOString(),
      editedAt: null,
      deletedAt: null,
    };
    socket.to(`chat:${p.chatId}`).emit('message:new', message);
    const sent = { clientMessageId: p.clientMessageId ?? null, message };
    socket.emit('message:sent', sent);
    if (typeof ack === 'function') ack({ ok: true, data: sent });
  });
});

http.listen(port, '127.0.0.1', () => {
  console.log(`reference listening on http://127.0.0.1:${port}`);
});
