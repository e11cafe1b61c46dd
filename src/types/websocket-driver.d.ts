// The part of websocket-driver (no published types) the gateway and its tests use.
declare module "websocket-driver" {
  import type { EventEmitter } from "node:events";

  interface IoStream extends EventEmitter {
    write(chunk: Uint8Array): boolean;
    on(event: "data", listener: (chunk: Buffer) => void): this;
  }
  interface MessageStream extends EventEmitter {
    on(event: "data", listener: (message: string | Buffer) => void): this;
  }
  interface CloseEvent {
    readonly code: number;
    readonly reason: string;
  }
  export interface Driver extends EventEmitter {
    readonly io: IoStream;
    readonly messages: MessageStream;
    readonly readyState: number;
    readonly headers: Record<string, string>;
    readonly statusCode?: number;
    readonly protocol: string;
    start(): boolean;
    /** Adds a header to the handshake's answer (before start()). */
    setHeader(name: string, value: string): boolean;
    text(message: string): boolean;
    binary(message: Buffer): boolean;
    ping(message?: string): boolean;
    close(reason?: string, code?: number): boolean;
    on(event: "open" | "connect", listener: () => void): this;
    on(event: "close", listener: (event: CloseEvent) => void): this;
    on(event: "error", listener: (error: Error) => void): this;
  }
  export interface DriverOptions {
    readonly maxLength?: number;
    readonly protocols?: readonly string[];
    readonly requireMasking?: boolean;
    readonly masking?: boolean;
  }
  export interface HttpRequestLike {
    readonly method: string;
    readonly url: string;
    readonly headers: Record<string, string>;
  }
  const websocket: {
    client(url: string, options?: DriverOptions): Driver;
    server(options?: DriverOptions): Driver;
    http(request: HttpRequestLike, options?: DriverOptions): Driver;
    isWebSocket(request: HttpRequestLike | Driver): boolean;
  };
  export default websocket;
}
