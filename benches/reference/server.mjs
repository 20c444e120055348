// The reference: a minimal socket.io 4.8 server implementing the contract's chat:join and
// message:send the way Switchboard does (same rooms, acks and emitted events), WITHOUT
// persistence or membership checks — it is the Node baseline for benches/run.sh, not a product.
// HS256 tokens are verified like Switchboard's (signature and exp). With REDIS_URL it uses
// @socket.io/redis-adapter so two processes form a cluster (presence of `/insforge` stays
// per process). Also InsForge's realtime:* events on `/insforge` (below).
//
//   PORT=3100 JWT_SECRET=... [API_KEY=...] [REDIS_URL=redis://127.0.0.1:6379] node server.mjs
import { createServer } from 'node:http';
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
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

// InsForge realtime on `/insforge` (docs/protocols/insforge.md, the events loadgen's
// insforge-fanout uses), in memory: no channel definitions, and messages are NOT stored
// (Switchboard stores every published message before delivering it). Auth: `auth.apiKey` equal
// to API_KEY (admin, senderType system) or `auth.token` a JWT as above; presence is one member
// per user (per socket for API keys).
const apiKey = process.env.API_KEY ?? '';
const insforge = io.of('/insforge');
const members = new Map(); // channel -> Map(presenceId -> {member, sockets})
insforge.use((socket, next) => {
  try {
    const auth = socket.handshake.auth ?? {};
    if (typeof auth.apiKey === 'string' && auth.apiKey) {
      if (!apiKey || auth.apiKey !== apiKey) return next(new Error('Invalid API key'));
      socket.data.sender = { senderType: 'system' };
      socket.data.presenceId = socket.id;
      return next();
    }
    const claims = verify(auth.token);
    if (!claims) return next(new Error('Invalid token: bad signature'));
    socket.data.sender = { senderType: 'user', senderId: claims.sub };
    socket.data.presenceId = claims.sub;
    return next();
  } catch {
    return next(new Error('Invalid token: malformed'));
  }
});
const realtimeError = (socket, channel, code, message) => socket.emit('realtime:error', { channel, code, message });
insforge.on('connection', (socket) => {
  const { sender, presenceId } = socket.data;
  const type = sender.senderType === 'user' ? 'user' : 'anonymous';
  const subscribed = new Set();
  socket.on('realtime:subscribe', (p, ack) => {
    const channel = p?.channel;
    if (typeof channel !== 'string' || !channel) {
      if (typeof ack === 'function') ack({ ok: false, channel: '', error: { code: 'REALTIME_UNAUTHORIZED', message: 'Invalid request' } });
      return;
    }
    if (!subscribed.has(channel)) {
      subscribed.add(channel);
      socket.join(`realtime:${channel}`);
      let ch = members.get(channel);
      if (!ch) members.set(channel, (ch = new Map()));
      let m = ch.get(presenceId);
      if (!m) {
        m = { member: { type, presenceId, joinedAt: new Date().toISOString() }, sockets: new Set() };
        ch.set(presenceId, m);
        const meta = { channel, messageId: randomUUID(), senderType: 'system', timestamp: new Date().toISOString() };
        socket.to(`realtime:${channel}`).emit('presence:join', { member: m.member, meta });
      }
      m.sockets.add(socket.id);
    }
    const list = [...members.get(channel).values()].map((m) => m.member);
    if (typeof ack === 'function') ack({ ok: true, channel, presence: { members: list } });
  });
  socket.on('realtime:publish', (p) => {
    const channel = p?.channel;
    if (typeof channel !== 'string' || !subscribed.has(channel)) {
      return realtimeError(socket, channel, 'REALTIME_NOT_SUBSCRIBED', 'Must subscribe to channel before publishing messages');
    }
    if (typeof p.event !== 'string' || !p.event || p.payload === null || typeof p.payload !== 'object' || Array.isArray(p.payload)) {
      return realtimeError(socket, channel, 'REALTIME_INVALID_EVENT', 'Invalid publish request');
    }
    const meta = { channel: `realtime:${channel}`, messageId: randomUUID(), ...sender, timestamp: new Date().toISOString() };
    insforge.to(`realtime:${channel}`).emit(p.event, { ...p.payload, meta });
  });
  socket.on('disconnect', () => {
    for (const channel of subscribed) {
      const ch = members.get(channel);
      const m = ch?.get(presenceId);
      if (!m) continue;
      m.sockets.delete(socket.id);
      if (m.sockets.size > 0) continue;
      ch.delete(presenceId);
      if (ch.size === 0) members.delete(channel);
      const meta = { channel, messageId: randomUUID(), senderType: 'system', timestamp: new Date().toISOString() };
      insforge.to(`realtime:${channel}`).emit('presence:leave', { member: { type, presenceId }, meta });
    }
  });
});

http.listen(port, '127.0.0.1', () => {
  console.log(`reference listening on http://127.0.0.1:${port}`);
});
