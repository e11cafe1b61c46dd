import type { ClientEvents as TransportEvents, ClientPort as TransportPort } from "../net/client-port.ts";
import type { Session } from "./session.ts";

// The session layer's view of the transport contract (src/net/client-port.ts): a port whose
// connection carries a Session, and the events SessionService takes from any listener.
export type { ClientProtocol, CloseReason } from "../net/client-port.ts";

export type ClientPort = TransportPort<Session>;
export type ClientEvents = TransportEvents<Session>;
