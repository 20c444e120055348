// An app written against the generated types. `npm run check` compiles it; every
// `@ts-expect-error` line must fail to compile, or the check fails.

import { Ajv2020 } from "ajv/dist/2020.js";

import { connect, SwitchboardError } from "../src/index.js";
import type { ChatJoined, Message, SwitchboardSocket } from "../src/index.js";
import { requestValidator } from "../src/validate.js";

export async function chatApp(token: string): Promise<void> {
  const client = connect({
    url: "http://localhost:3000",
    token: () => token,
    validate: requestValidator(new Ajv2020({ strict: false, validateFormats: false })),
  });

  // Requests resolve with the ack's data, typed per event.
  const joined: ChatJoined = await client.keep("chat:join", { chatId: "general", projectId: "demo" });
  console.log(joined.participants.length, joined.unreadCount);
  const sent = await client.request("message:send", {
    chatId: "general",
    projectId: "demo",
    type: "text",
    content: "hello",
    clientMessageId: "c-1",
  });
  const m: Message = sent.message;
  console.log(m.id, m.createdAt);
  await client.request("subscribe:project", "demo");
  await client.request("subscribe:project", { projectId: "demo" });

  // Server events carry their payload types.
  const stop = client.on("message:new", (message) => console.log(message.content, message.senderId));
  client.on("wallet:subscribed", (s) => {
    if (s.scope === "address") console.log(s.addressId);
  });
  client.onCustom("cursor", (e) => console.log(e.from.userId, e.payload));
  stop();

  try {
    await client.request("call:initiate", { chatId: "general", type: "video", participants: ["bob"] });
  } catch (e) {
    if (e instanceof SwitchboardError && e.code === "FORBIDDEN") console.log("not a participant");
  }

  // The raw socket is typed too.
  const socket: SwitchboardSocket = client.socket;
  socket.emit("chat:typing:start", { chatId: "general" }, (res) => {
    if (res.ok) console.log(res.data.chatId);
    else console.log(res.error.code);
  });

  // @ts-expect-error: no such event
  await client.request("chat:jion", { chatId: "general", projectId: "demo" });
  // @ts-expect-error: `chatID` is not a field of chat:join's request (and `chatId` is missing)
  await client.request("chat:join", { chatID: "general", projectId: "demo" });
  // @ts-expect-error: message types are a closed set
  await client.request("message:send", { chatId: "general", projectId: "demo", type: "gif", content: "x" });
  // @ts-expect-error: chat:leave's ack carries `{ chatId }`, not a message
  const wrong: Message = await client.request("chat:leave", { chatId: "general" });
  socket.emit("chat:leave", { chatId: "general" }, (res) => {
    // @ts-expect-error: the ack is a union; `data` exists only once `ok` is checked
    console.log(res.data.chatId);
  });
  // @ts-expect-error: error codes are a closed set
  const code: import("../src/index.js").ErrorCode = "TEAPOT";
  // @ts-expect-error: server events are typed: `message:new` carries a Message, not a number
  client.on("message:new", (n: number) => console.log(n));
  console.log(wrong, code);
  client.close();
}
