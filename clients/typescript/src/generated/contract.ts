// Generated from the server's Rust types by `switchboard contracts`: do not edit.
// docs/contracts.md says what it holds and how to regenerate it.

export type AddressId = string;

export type AddressRef = { addressId: AddressId, };

export type Broadcast = { projectId: ProjectId, event: EventName, payload?: JsonValue, room?: RoomName | null, };

/**
 * `call:accepted`, `call:rejected`, to the caller.
 */
export type CallAnswer = { callId: CallId, chatId: ChatId, userId: UserId, };

/**
 * The ack of `call:accept` and `call:reject`: the call's state afterwards.
 */
export type CallAnswered = { callId: CallId, state: string, };

export type CallEnd = { chatId: ChatId, participants: Array<UserId>, callId?: CallId | null, };

/**
 * `call:ended`.
 */
export type CallEnded = { callId: CallId, chatId: ChatId, endedBy: UserId, durationMs: number, };

/**
 * The ack of `call:end`.
 */
export type CallEndedAck = { callId: CallId, durationMs: number, };

export type CallId = string;

/**
 * The ack of `call:initiate`.
 */
export type CallIdOnly = { callId: CallId, };

/**
 * `call:incoming`, to the participants.
 */
export type CallIncoming = { callId: CallId, chatId: ChatId, type: CallType, callerId: UserId, participants: Array<UserId>, };

export type CallInitiate = { chatId: ChatId, type: CallType, participants: Array<UserId>, };

/**
 * `call:missed`.
 */
export type CallMissed = { callId: CallId, chatId: ChatId, };

export type CallReply = { chatId: ChatId, callerId: UserId, callId?: CallId | null, };

/**
 * `call:signal`: SDP or ICE relayed from one participant.
 */
export type CallSignal = { callId: CallId, from: UserId, signal: JsonValue, };

export type CallSignalRequest = { callId: CallId, to: UserId, signal: JsonValue, };

export type CallType = "audio" | "video";

export type ChainRef = { chain: Label, };

export type ChatId = string;

/**
 * `chat:left`, and the ack of `chat:leave` and `chat:typing:*`.
 */
export type ChatIdOnly = { chatId: ChatId, };

/**
 * `chat:joined` and the ack of `chat:join`; with `since`, the messages after it.
 */
export type ChatJoined = { chatId: ChatId, projectId: ProjectId, participants: Array<UserId>, unreadCount: number, messages?: Array<Message> | null, hasMore?: boolean | null, };

export type ChatRef = { chatId: ChatId, };

/**
 * `user:typing:start`, `user:typing:stop`, and `user:online` / `user:offline` of a chat.
 */
export type ChatUser = { chatId: ChatId, userId: UserId, };

export type ClientMessageId = string;

export type CollectionId = string;

/**
 * The `type` of a `subscribed` / `unsubscribed` payload.
 */
export type CollectionKind = "collection";

/**
 * `collectionId` alone (in the socket's active project) or `{ projectId, collectionId }`.
 */
export type CollectionRef = CollectionId | { projectId: ProjectId, collectionId: CollectionId, };

/**
 * `subscribed` / `unsubscribed` for a collection, and the ack of both.
 */
export type CollectionSubscription = { type: CollectionKind, projectId: ProjectId, collectionId: CollectionId, };

export type CollectionUnsubscribe = { collectionId: CollectionId, projectId?: ProjectId | null, };

export type CurrencyRef = { currency: Label, };

/**
 * `custom:<event>` from `custom:broadcast` (a room named `channel:<name>` carries the
 * protocol channels' `{ data, user_id }` instead; docs/protocol.md).
 */
export type CustomBroadcast = { from: Sender, payload: JsonValue, };

/**
 * `{ projectId, ...anything }`: everything but `projectId` is relayed as given.
 */
export type CustomEvent = { projectId: ProjectId, } & ({ [key in string]: number | string | boolean | Array<JsonValue> | { [key in string]: JsonValue } | null });

/**
 * `custom:event`: the sender's payload as given, plus `from`.
 */
export type CustomEventRelayed = { projectId: ProjectId, from: Sender, } & ({ [key in string]: number | string | boolean | Array<JsonValue> | { [key in string]: JsonValue } | null });

/**
 * `custom:message`, to the target's sockets.
 */
export type CustomMessage = { from: Sender, message: JsonValue, 
/**
 * The sender's `type`, `text` when it gave none.
 */
type: string, };

export type CustomMessageType = string;

export type CustomPresence = { projectId: ProjectId, status: Status, metadata?: { [key in string]: JsonValue } | null, };

/**
 * `custom:presence`.
 */
export type CustomPresenceRelayed = { userId: UserId, status: string, metadata: { [key in string]: JsonValue }, };

export type CustomTyping = { projectId: ProjectId, isTyping: boolean, context?: JsonValue, };

/**
 * `custom:typing`.
 */
export type CustomTypingRelayed = { userId: UserId, isTyping: boolean, context: JsonValue, };

export type DirectMessage = { targetUserId: UserId, message: JsonValue, type?: CustomMessageType | null, };

/**
 * `document:created`, `document:updated`, `document:deleted`.
 */
export type DocumentChanged = { projectId: ProjectId, collectionId: CollectionId, documentId: DocumentId, 
/**
 * After the change; `null` for a delete.
 */
document: { [key in string]: JsonValue } | null, 
/**
 * Before the change, when known.
 */
previous?: { [key in string]: JsonValue } | null, changedAt: Timestamp, };

export type DocumentId = string;

export type DocumentKind = "document";

export type DocumentRef = { projectId: ProjectId, collectionId: CollectionId, documentId: DocumentId, };

/**
 * `subscribed` for a document, with its current state (`null`: none, or not readable).
 */
export type DocumentSubscription = { type: DocumentKind, projectId: ProjectId, collectionId: CollectionId, documentId: DocumentId, document: { [key in string]: JsonValue } | null, };

export type EditMessage = { chatId: ChatId, projectId: ProjectId, messageId: MessageId, content: JsonValue, };

/**
 * One grapheme cluster (an emoji, possibly with modifiers and joiners) or a short `:name:`.
 */
export type Emoji = string;

/**
 * `{}`: an ack that carries nothing more than success.
 */
export type Empty = Record<symbol, never>;

/**
 * An endpoint or parameter name: `[A-Za-z0-9_.-]{1,64}`.
 */
export type EndpointName = string;

/**
 * The wire shape of an error: `{ code, message }`.
 */
export type ErrorBody = { code: ErrorCode, message: string, };

export type ErrorCode = "INVALID_PAYLOAD" | "UNAUTHORIZED" | "FORBIDDEN" | "NOT_FOUND" | "CONFLICT" | "RATE_LIMITED" | "PAYLOAD_TOO_LARGE" | "UNAVAILABLE" | "INTERNAL";

/**
 * `error`: a refused event, also told to the sender beside the failure ack.
 */
export type ErrorEvent = { event: string, code: ErrorCode, message: string, };

/**
 * An app-defined event name: `[A-Za-z0-9_.:-]{1,64}` (contract), not one of the server's own
 * (`RESERVED_EVENTS`, without the `custom:` prefix).
 */
export type EventName = string;

/**
 * The ack of `custom:broadcast`: the event name as emitted.
 */
export type EventOnly = { event: string, };

export type FileId = string;

/**
 * The ack of `custom:file:share`.
 */
export type FileIdOnly = { fileId: string, };

export type FileName = string;

export type FileShare = { projectId: ProjectId, fileId: FileId, fileName: FileName, recipients?: Array<UserId> | null, };

/**
 * `custom:file:shared`.
 */
export type FileShared = { from: Sender, projectId: ProjectId, fileId: string, fileName: string, };

export type GoOnline = { projectId?: ProjectId | null, status?: string | null, metadata?: { [key in string]: JsonValue } | null, };

/**
 * `integration:error`: a refused `integration:*` event.
 */
export type IntegrationError = { integrationId: string | null, code: ErrorCode, message: string, };

export type IntegrationExecute = { projectId: ProjectId, integrationId: IntegrationId, endpoint: EndpointName, params?: { [key in string]: JsonValue } | null, requestData?: JsonValue | null, };

export type IntegrationId = string;

/**
 * `integration:left`, `integration:webhook:subscribed`, `integration:webhook:unsubscribed`.
 */
export type IntegrationIdOnly = { integrationId: IntegrationId, };

export type IntegrationInProject = { projectId: ProjectId, integrationId: IntegrationId, };

/**
 * `integration:joined`; `status` is `active`, `error` or `disabled`.
 */
export type IntegrationJoined = { integrationId: IntegrationId, name: string, status: string, };

export type IntegrationRef = { integrationId: IntegrationId, };

/**
 * `integration:result`: the endpoint's HTTP status and body.
 */
export type IntegrationResult = { integrationId: IntegrationId, endpoint: string, status: number, data: JsonValue, durationMs: number, };

/**
 * `integration:status:response`.
 */
export type IntegrationStatus = { integrationId: IntegrationId, status: string, lastExecutedAt: Timestamp | null, lastError: string | null, executions: number, failures: number, };

export type IntegrationTest = { projectId: ProjectId, integrationId: IntegrationId, endpoint: EndpointName, };

/**
 * `integration:test:result`; `status` is `null` and `error` says why when the endpoint
 * could not be reached.
 */
export type IntegrationTestResult = { integrationId: IntegrationId, endpoint: string, ok: boolean, status: number | null, durationMs: number, error?: string | null, };

/**
 * `integration:webhook`: a verified inbound webhook call.
 */
export type IntegrationWebhook = { integrationId: IntegrationId, id: string, body: JsonValue, receivedAt: Timestamp, };

export type JoinChat = { chatId: ChatId, projectId: ProjectId, since?: MessageId | null, };

export type JsonValue = number | string | boolean | Array<JsonValue> | { [key in string]: JsonValue } | null;

/**
 * A chain or currency name as it appears in room names.
 */
export type Label = string;

export type MarkRead = { chatId: ChatId, projectId: ProjectId, messageIds: Array<MessageId>, };

export type Message = { id: MessageId, chatId: ChatId, projectId: ProjectId, senderId: UserId, type: MessageType, content: JsonValue, replyTo: MessageId | null, mentions: Array<UserId>, reactions: Array<Reaction>, createdAt: Timestamp, editedAt: Timestamp | null, deletedAt: Timestamp | null, };

/**
 * `message:deleted` and the ack of `message:delete`.
 */
export type MessageDeleted = { chatId: ChatId, messageId: MessageId, deletedBy: UserId, deletedAt: Timestamp | null, };

/**
 * `message:edited` and the ack of `message:edit`.
 */
export type MessageEdited = { chatId: ChatId, messageId: MessageId, content: JsonValue, editedAt: Timestamp | null, };

export type MessageId = string;

/**
 * `message:mention`, to mentioned users not in the chat's room.
 */
export type MessageMention = { chatId: ChatId, projectId: ProjectId, message: Message, };

/**
 * `message:reaction` and the ack of `message:react`.
 */
export type MessageReaction = { chatId: ChatId, messageId: MessageId, emoji: string, userId: UserId, action: ReactionAction, reactions: Array<Reaction>, };

export type MessageRef = { chatId: ChatId, projectId: ProjectId, messageId: MessageId, };

/**
 * `message:sent` and the ack of `message:send`.
 */
export type MessageSent = { message: Message, clientMessageId?: string | null, };

export type MessageType = "text" | "image" | "file" | "audio" | "video" | "location" | "system";

/**
 * `messages:read` and the ack of `messages:mark:read`.
 */
export type MessagesRead = { chatId: ChatId, userId: UserId, messageIds: Array<MessageId>, readAt: Timestamp, };

/**
 * `presence:online:list` and the ack of `presence:get:online`.
 */
export type OnlineList = { projectId: ProjectId, users: Array<OnlineUser>, };

/**
 * One user of `presence:online:list`; `connections` counts their sockets in the cluster.
 */
export type OnlineUser = { userId: UserId, status: string, lastSeen: Timestamp, metadata: { [key in string]: JsonValue }, connections: number, };

/**
 * The ack of `presence:online`.
 */
export type PresenceAnnounced = { projectIds: Array<ProjectId>, status: string, lastSeen: Timestamp, };

/**
 * The ack of `presence:update`: `announced` is false when the user had not announced
 * presence (nothing to refresh).
 */
export type PresenceRefreshed = { lastSeen: Timestamp, announced: boolean, };

/**
 * `presence:user:offline`.
 */
export type PresenceUserOffline = { userId: UserId, projectId: ProjectId, lastSeen: Timestamp, };

/**
 * `presence:user:online`.
 */
export type PresenceUserOnline = { userId: UserId, projectId: ProjectId, status: string, lastSeen: Timestamp, metadata: { [key in string]: JsonValue }, };

/**
 * A project's id.
 */
export type ProjectId = string;

export type ProjectIdOnly = { projectId: ProjectId, };

/**
 * A request naming only a project, as `{ projectId }` (`auth:login`, `auth:logout`,
 * `presence:get:online`, `wallet:subscribe:project`, `wallet:unsubscribe:project`).
 */
export type ProjectOnly = { projectId: ProjectId, };

/**
 * `projectId` given as a bare string or as `{ projectId }`: the seed table shows the bare
 * form, and frontends that wrap every payload in an object send the other.
 */
export type ProjectRef = ProjectId | { projectId: ProjectId, };

/**
 * `user:online` / `user:offline` of a project (`auth:login`, `auth:logout`).
 */
export type ProjectUser = { userId: UserId, projectId: ProjectId, };

/**
 * `query:added`, `query:changed`, `query:removed`.
 */
export type QueryChanged = { queryId: string, documentId: DocumentId, document: { [key in string]: JsonValue } | null, };

/**
 * A client-chosen live query id (bounded like every id).
 */
export type QueryId = string;

export type QueryKind = "query";

export type QueryRef = { queryId: QueryId, };

/**
 * `subscribed` for a live query, with the current result set.
 */
export type QuerySubscription = { type: QueryKind, projectId: ProjectId, collectionId: CollectionId, queryId: string, documents: Array<{ [key in string]: JsonValue }>, };

/**
 * `unsubscribed` for a live query.
 */
export type QueryUnsubscription = { type: QueryKind, queryId: string, };

export type ReactMessage = { chatId: ChatId, projectId: ProjectId, messageId: MessageId, emoji: Emoji, };

export type Reaction = { emoji: string, userIds: Array<UserId>, count: number, };

export type ReactionAction = "added" | "removed";

export type RoomName = string;

/**
 * `custom:joined`, `custom:left` and their acks.
 */
export type RoomOnly = { room: string, };

export type RoomRef = { room: RoomName, };

export type SendMessage = { chatId: ChatId, projectId: ProjectId, type: MessageType, content: JsonValue, replyTo?: MessageId | null, mentions?: Array<UserId> | null, clientMessageId?: ClientMessageId | null, };

/**
 * `from`: who sent it, `{ userId, name }`.
 */
export type Sender = { userId: UserId, name: string, };

export type SessionUpdate = { projectId: ProjectId, sessionData: JsonValue, };

/**
 * `session:updated`, to the user's other sockets.
 */
export type SessionUpdated = { projectId: ProjectId, sessionData: JsonValue, };

export type Status = string;

export type SubscribeQuery = { projectId: ProjectId, collectionId: CollectionId, queryId: QueryId, query?: JsonValue | null, };

/**
 * `subscribed`: one of the three subscriptions.
 */
export type Subscribed = CollectionSubscription | DocumentSubscription | QuerySubscription;

/**
 * The ack of `custom:message`.
 */
export type TargetOnly = { targetUserId: UserId, };

export type Timestamp = string;

export type TxDirection = "in" | "out";

export type TxStatus = "pending" | "confirmed" | "failed";

/**
 * `unsubscribed`: a collection or a live query.
 */
export type Unsubscribed = CollectionSubscription | QueryUnsubscription;

/**
 * A user's id (a JWT's `sub`).
 */
export type UserId = string;

/**
 * `user:online` / `user:offline`: in a chat (`chat:join`, `chat:leave`) or in a project
 * (`auth:login`, `auth:logout`).
 */
export type UserSeen = ChatUser | ProjectUser;

/**
 * `wallet:subscribed` / `wallet:unsubscribed` and their acks, by `scope`.
 */
export type WalletScope = { "scope": "address", addressId: AddressId, } | { "scope": "project", projectId: ProjectId, } | { "scope": "chain", chain: string, projectId: ProjectId, } | { "scope": "currency", currency: string, projectId: ProjectId, };

/**
 * A wallet transaction as the contract emits it. `amount` is a decimal string, never a float.
 */
export type WalletTransaction = { id: string, addressId: AddressId, projectId: ProjectId, chain: string, currency: string, amount: string, direction: TxDirection, txHash: string, status: TxStatus, confirmations: number, createdAt: Timestamp, };

/** What every client event's ack callback receives. */
export type Ack<T> =
  | { ok: true; data: T }
  | { ok: false; error: { code: ErrorCode; message: string } };

/** Each client → server event's request payload and ack data. */
export interface ClientEvents {
  "subscribe:project": { request: ProjectRef; ack: ProjectIdOnly };
  "unsubscribe:project": { request: ProjectRef; ack: ProjectIdOnly };
  "custom:event": { request: CustomEvent; ack: Empty };
  "custom:broadcast": { request: Broadcast; ack: EventOnly };
  "custom:join": { request: RoomRef; ack: RoomOnly };
  "custom:leave": { request: RoomRef; ack: RoomOnly };
  "custom:message": { request: DirectMessage; ack: TargetOnly };
  "custom:presence": { request: CustomPresence; ack: Empty };
  "custom:typing": { request: CustomTyping; ack: Empty };
  "custom:file:share": { request: FileShare; ack: FileIdOnly };
  "auth:login": { request: ProjectOnly; ack: ProjectIdOnly };
  "auth:logout": { request: ProjectOnly; ack: ProjectIdOnly };
  "auth:session:update": { request: SessionUpdate; ack: ProjectIdOnly };
  "presence:online": { request: GoOnline | null; ack: PresenceAnnounced };
  "presence:offline": { request: JsonValue; ack: Empty };
  "presence:update": { request: JsonValue; ack: PresenceRefreshed };
  "presence:get:online": { request: ProjectOnly; ack: OnlineList };
  "integration:join": { request: IntegrationInProject; ack: IntegrationJoined };
  "integration:leave": { request: IntegrationRef; ack: IntegrationIdOnly };
  "integration:execute": { request: IntegrationExecute; ack: IntegrationResult };
  "integration:test": { request: IntegrationTest; ack: IntegrationTestResult };
  "integration:status": { request: IntegrationInProject; ack: IntegrationStatus };
  "integration:webhook:subscribe": { request: IntegrationInProject; ack: IntegrationIdOnly };
  "integration:webhook:unsubscribe": { request: IntegrationRef; ack: IntegrationIdOnly };
  "wallet:subscribe:address": { request: AddressRef; ack: WalletScope };
  "wallet:subscribe:project": { request: ProjectOnly; ack: WalletScope };
  "wallet:subscribe:chain": { request: ChainRef; ack: WalletScope };
  "wallet:subscribe:currency": { request: CurrencyRef; ack: WalletScope };
  "wallet:unsubscribe:address": { request: AddressRef; ack: WalletScope };
  "wallet:unsubscribe:project": { request: ProjectOnly; ack: WalletScope };
  "chat:join": { request: JoinChat; ack: ChatJoined };
  "chat:leave": { request: ChatRef; ack: ChatIdOnly };
  "chat:typing:start": { request: ChatRef; ack: ChatIdOnly };
  "chat:typing:stop": { request: ChatRef; ack: ChatIdOnly };
  "message:send": { request: SendMessage; ack: MessageSent };
  "message:react": { request: ReactMessage; ack: MessageReaction };
  "message:edit": { request: EditMessage; ack: MessageEdited };
  "message:delete": { request: MessageRef; ack: MessageDeleted };
  "messages:mark:read": { request: MarkRead; ack: MessagesRead };
  "call:initiate": { request: CallInitiate; ack: CallIdOnly };
  "call:accept": { request: CallReply; ack: CallAnswered };
  "call:reject": { request: CallReply; ack: CallAnswered };
  "call:end": { request: CallEnd; ack: CallEndedAck };
  "call:signal": { request: CallSignalRequest; ack: Empty };
  "subscribe:collection": { request: CollectionRef; ack: CollectionSubscription };
  "unsubscribe:collection": { request: CollectionUnsubscribe; ack: CollectionSubscription };
  "subscribe:document": { request: DocumentRef; ack: DocumentSubscription };
  "subscribe:query": { request: SubscribeQuery; ack: QuerySubscription };
  "unsubscribe:query": { request: QueryRef; ack: QueryUnsubscription };
}

/** socket.io-client's emit map: `io(url) as Socket<ServerToClientEvents, ClientToServerEvents>`. */
export interface ClientToServerEvents {
  "subscribe:project": (payload: ProjectRef, ack?: (res: Ack<ProjectIdOnly>) => void) => void;
  "unsubscribe:project": (payload: ProjectRef, ack?: (res: Ack<ProjectIdOnly>) => void) => void;
  "custom:event": (payload: CustomEvent, ack?: (res: Ack<Empty>) => void) => void;
  "custom:broadcast": (payload: Broadcast, ack?: (res: Ack<EventOnly>) => void) => void;
  "custom:join": (payload: RoomRef, ack?: (res: Ack<RoomOnly>) => void) => void;
  "custom:leave": (payload: RoomRef, ack?: (res: Ack<RoomOnly>) => void) => void;
  "custom:message": (payload: DirectMessage, ack?: (res: Ack<TargetOnly>) => void) => void;
  "custom:presence": (payload: CustomPresence, ack?: (res: Ack<Empty>) => void) => void;
  "custom:typing": (payload: CustomTyping, ack?: (res: Ack<Empty>) => void) => void;
  "custom:file:share": (payload: FileShare, ack?: (res: Ack<FileIdOnly>) => void) => void;
  "auth:login": (payload: ProjectOnly, ack?: (res: Ack<ProjectIdOnly>) => void) => void;
  "auth:logout": (payload: ProjectOnly, ack?: (res: Ack<ProjectIdOnly>) => void) => void;
  "auth:session:update": (payload: SessionUpdate, ack?: (res: Ack<ProjectIdOnly>) => void) => void;
  "presence:online": (payload: GoOnline | null, ack?: (res: Ack<PresenceAnnounced>) => void) => void;
  "presence:offline": (payload: JsonValue, ack?: (res: Ack<Empty>) => void) => void;
  "presence:update": (payload: JsonValue, ack?: (res: Ack<PresenceRefreshed>) => void) => void;
  "presence:get:online": (payload: ProjectOnly, ack?: (res: Ack<OnlineList>) => void) => void;
  "integration:join": (payload: IntegrationInProject, ack?: (res: Ack<IntegrationJoined>) => void) => void;
  "integration:leave": (payload: IntegrationRef, ack?: (res: Ack<IntegrationIdOnly>) => void) => void;
  "integration:execute": (payload: IntegrationExecute, ack?: (res: Ack<IntegrationResult>) => void) => void;
  "integration:test": (payload: IntegrationTest, ack?: (res: Ack<IntegrationTestResult>) => void) => void;
  "integration:status": (payload: IntegrationInProject, ack?: (res: Ack<IntegrationStatus>) => void) => void;
  "integration:webhook:subscribe": (payload: IntegrationInProject, ack?: (res: Ack<IntegrationIdOnly>) => void) => void;
  "integration:webhook:unsubscribe": (payload: IntegrationRef, ack?: (res: Ack<IntegrationIdOnly>) => void) => void;
  "wallet:subscribe:address": (payload: AddressRef, ack?: (res: Ack<WalletScope>) => void) => void;
  "wallet:subscribe:project": (payload: ProjectOnly, ack?: (res: Ack<WalletScope>) => void) => void;
  "wallet:subscribe:chain": (payload: ChainRef, ack?: (res: Ack<WalletScope>) => void) => void;
  "wallet:subscribe:currency": (payload: CurrencyRef, ack?: (res: Ack<WalletScope>) => void) => void;
  "wallet:unsubscribe:address": (payload: AddressRef, ack?: (res: Ack<WalletScope>) => void) => void;
  "wallet:unsubscribe:project": (payload: ProjectOnly, ack?: (res: Ack<WalletScope>) => void) => void;
  "chat:join": (payload: JoinChat, ack?: (res: Ack<ChatJoined>) => void) => void;
  "chat:leave": (payload: ChatRef, ack?: (res: Ack<ChatIdOnly>) => void) => void;
  "chat:typing:start": (payload: ChatRef, ack?: (res: Ack<ChatIdOnly>) => void) => void;
  "chat:typing:stop": (payload: ChatRef, ack?: (res: Ack<ChatIdOnly>) => void) => void;
  "message:send": (payload: SendMessage, ack?: (res: Ack<MessageSent>) => void) => void;
  "message:react": (payload: ReactMessage, ack?: (res: Ack<MessageReaction>) => void) => void;
  "message:edit": (payload: EditMessage, ack?: (res: Ack<MessageEdited>) => void) => void;
  "message:delete": (payload: MessageRef, ack?: (res: Ack<MessageDeleted>) => void) => void;
  "messages:mark:read": (payload: MarkRead, ack?: (res: Ack<MessagesRead>) => void) => void;
  "call:initiate": (payload: CallInitiate, ack?: (res: Ack<CallIdOnly>) => void) => void;
  "call:accept": (payload: CallReply, ack?: (res: Ack<CallAnswered>) => void) => void;
  "call:reject": (payload: CallReply, ack?: (res: Ack<CallAnswered>) => void) => void;
  "call:end": (payload: CallEnd, ack?: (res: Ack<CallEndedAck>) => void) => void;
  "call:signal": (payload: CallSignalRequest, ack?: (res: Ack<Empty>) => void) => void;
  "subscribe:collection": (payload: CollectionRef, ack?: (res: Ack<CollectionSubscription>) => void) => void;
  "unsubscribe:collection": (payload: CollectionUnsubscribe, ack?: (res: Ack<CollectionSubscription>) => void) => void;
  "subscribe:document": (payload: DocumentRef, ack?: (res: Ack<DocumentSubscription>) => void) => void;
  "subscribe:query": (payload: SubscribeQuery, ack?: (res: Ack<QuerySubscription>) => void) => void;
  "unsubscribe:query": (payload: QueryRef, ack?: (res: Ack<QueryUnsubscription>) => void) => void;
}

/** socket.io-client's listen map: what the server emits. */
export interface ServerToClientEvents {
  "error": (payload: ErrorEvent) => void;
  "custom:event": (payload: CustomEventRelayed) => void;
  "integration:error": (payload: IntegrationError) => void;
  "integration:joined": (payload: IntegrationJoined) => void;
  "integration:left": (payload: IntegrationIdOnly) => void;
  "integration:result": (payload: IntegrationResult) => void;
  "integration:test:result": (payload: IntegrationTestResult) => void;
  "integration:status:response": (payload: IntegrationStatus) => void;
  "integration:webhook:subscribed": (payload: IntegrationIdOnly) => void;
  "integration:webhook:unsubscribed": (payload: IntegrationIdOnly) => void;
  "integration:webhook": (payload: IntegrationWebhook) => void;
  "subscribed": (payload: Subscribed) => void;
  "unsubscribed": (payload: Unsubscribed) => void;
  "chat:joined": (payload: ChatJoined) => void;
  "chat:left": (payload: ChatIdOnly) => void;
  "user:online": (payload: UserSeen) => void;
  "user:offline": (payload: UserSeen) => void;
  "user:typing:start": (payload: ChatUser) => void;
  "user:typing:stop": (payload: ChatUser) => void;
  "message:sent": (payload: MessageSent) => void;
  "message:new": (payload: Message) => void;
  "message:mention": (payload: MessageMention) => void;
  "message:reaction": (payload: MessageReaction) => void;
  "message:edited": (payload: MessageEdited) => void;
  "message:deleted": (payload: MessageDeleted) => void;
  "messages:read": (payload: MessagesRead) => void;
  "call:incoming": (payload: CallIncoming) => void;
  "call:accepted": (payload: CallAnswer) => void;
  "call:rejected": (payload: CallAnswer) => void;
  "call:ended": (payload: CallEnded) => void;
  "call:missed": (payload: CallMissed) => void;
  "call:signal": (payload: CallSignal) => void;
  "document:created": (payload: DocumentChanged) => void;
  "document:updated": (payload: DocumentChanged) => void;
  "document:deleted": (payload: DocumentChanged) => void;
  "query:added": (payload: QueryChanged) => void;
  "query:changed": (payload: QueryChanged) => void;
  "query:removed": (payload: QueryChanged) => void;
  "presence:user:online": (payload: PresenceUserOnline) => void;
  "presence:user:offline": (payload: PresenceUserOffline) => void;
  "presence:online:list": (payload: OnlineList) => void;
  "wallet:subscribed": (payload: WalletScope) => void;
  "wallet:unsubscribed": (payload: WalletScope) => void;
  "wallet:transaction": (payload: WalletTransaction) => void;
  "custom:joined": (payload: RoomOnly) => void;
  "custom:left": (payload: RoomOnly) => void;
  "custom:message": (payload: CustomMessage) => void;
  "custom:presence": (payload: CustomPresenceRelayed) => void;
  "custom:typing": (payload: CustomTypingRelayed) => void;
  "custom:file:shared": (payload: FileShared) => void;
  "session:updated": (payload: SessionUpdated) => void;
}

/** `custom:<event>` from `custom:broadcast`: app-chosen names, so not in the map above. */
export type CustomBroadcastEventName = `custom:${string}`;
export type CustomBroadcastEvent = CustomBroadcast;

export const CLIENT_EVENTS = ["subscribe:project", "unsubscribe:project", "custom:event", "custom:broadcast", "custom:join", "custom:leave", "custom:message", "custom:presence", "custom:typing", "custom:file:share", "auth:login", "auth:logout", "auth:session:update", "presence:online", "presence:offline", "presence:update", "presence:get:online", "integration:join", "integration:leave", "integration:execute", "integration:test", "integration:status", "integration:webhook:subscribe", "integration:webhook:unsubscribe", "wallet:subscribe:address", "wallet:subscribe:project", "wallet:subscribe:chain", "wallet:subscribe:currency", "wallet:unsubscribe:address", "wallet:unsubscribe:project", "chat:join", "chat:leave", "chat:typing:start", "chat:typing:stop", "message:send", "message:react", "message:edit", "message:delete", "messages:mark:read", "call:initiate", "call:accept", "call:reject", "call:end", "call:signal", "subscribe:collection", "unsubscribe:collection", "subscribe:document", "subscribe:query", "unsubscribe:query"] as const;

export const SERVER_EVENTS = ["error", "custom:event", "integration:error", "integration:joined", "integration:left", "integration:result", "integration:test:result", "integration:status:response", "integration:webhook:subscribed", "integration:webhook:unsubscribed", "integration:webhook", "subscribed", "unsubscribed", "chat:joined", "chat:left", "user:online", "user:offline", "user:typing:start", "user:typing:stop", "message:sent", "message:new", "message:mention", "message:reaction", "message:edited", "message:deleted", "messages:read", "call:incoming", "call:accepted", "call:rejected", "call:ended", "call:missed", "call:signal", "document:created", "document:updated", "document:deleted", "query:added", "query:changed", "query:removed", "presence:user:online", "presence:user:offline", "presence:online:list", "wallet:subscribed", "wallet:unsubscribed", "wallet:transaction", "custom:joined", "custom:left", "custom:message", "custom:presence", "custom:typing", "custom:file:shared", "session:updated"] as const;

export const ERROR_CODES = ["INVALID_PAYLOAD", "UNAUTHORIZED", "FORBIDDEN", "NOT_FOUND", "CONFLICT", "RATE_LIMITED", "PAYLOAD_TOO_LARGE", "UNAVAILABLE", "INTERNAL"] as const;
