/**
 * One client connection speaking the PostgreSQL protocol: startup and SCRAM
 * authentication, then the simple and extended query protocols over the warehouse.
 * Everything runs through `Warehouse`, so the same snapshot isolation and read-only
 * sandbox apply as over HTTP.
 */
import { randomInt } from "node:crypto";
import { once } from "node:events";
import type { Socket } from "node:net";
import { type SecureContext, TLSSocket } from "node:tls";
import { DuckDBTypeId, type DuckDBValue } from "@duckdb/node-api";
import {
  type AccessOptions,
  QueryError,
  QueryTimeout,
  type ResultColumn,
  type Warehouse,
} from "../warehouse/index.js";
import { postgresColumnNames, renameColumns, type SelectListNames } from "./column-names.js";
import { type CopyOut, copyHeader, copyLine, parseCopy } from "./copy.js";
import { Cursor, CursorError, type CursorStatement, parseCursorStatement } from "./cursors.js";
import { toDuckDbSql } from "./pg-catalog.js";
import { MECHANISM, ScramError, type ScramExchange, type ScramVerifiers } from "./scram.js";
import {
  answerLocally,
  type LocalAnswer,
  PgError,
  SERVER_PARAMETERS,
  splitStatements,
} from "./statements.js";
import {
  canSendBinary,
  decodeBinaryParameter,
  encodeBinary,
  encodeText,
  OID,
  pgTypeOid,
  pgTypeOidOfId,
  typeSize,
} from "./types.js";
import {
  authenticationOk,
  backendKeyData,
  bindComplete,
  CANCEL_REQUEST,
  closeComplete,
  commandComplete,
  copyData,
  copyDone,
  copyOutResponse,
  DataRows,
  type ErrorFields,
  emptyQueryResponse,
  errorResponse,
  type FieldDescription,
  GSSENC_REQUEST,
  MessageReader,
  MessageSplitter,
  MessageWriter,
  noData,
  noticeResponse,
  PROTOCOL_3,
  ProtocolError,
  parameterDescription,
  parameterStatus,
  parseComplete,
  portalSuspended,
  readyForQuery,
  rowDescription,
  SSL_REQUEST,
  type TransactionStatus,
} from "./wire.js";

export interface SessionOptions {
  warehouse: Warehouse;
  verifiers: ScramVerifiers;
  /** Rows per result before it is cut (with a warning). */
  maxRows: number;
  /** Largest message a client may send. */
  maxMessageBytes: number;
  /** Cancel keys → sessions, shared by the server's sessions. */
  registry: Map<string, Session>;
  /** The warehouse options a logged-in role's statements run with. */
  accessFor(role: string): AccessOptions;
  /** The query engine's settings (lower case), which SET may not name. */
  engineSettings: ReadonlySet<string>;
  /** TLS for the clients that ask for it; with `required`, the others are refused. */
  tls?: { context: SecureContext; required: boolean };
}

interface PreparedStatement {
  sql: string;
  /** Parameter type OIDs the client declared (0 = let the server decide). */
  declaredTypes: number[];
  local: LocalAnswer | null;
  /** A COPY … TO STDOUT: `sql` is its query. */
  copy: CopyOut | null;
  /** DECLARE (`sql` is its query), FETCH, MOVE or CLOSE. */
  cursor: CursorStatement | null;
}

interface OpenCursor {
  cursor: Cursor;
  columns: ResultColumn[];
  /** Declared in the transaction block now open: a ROLLBACK closes it, even WITH HOLD. */
  inTransaction: boolean;
}

interface Portal {
  statement: PreparedStatement;
  params: (string | Buffer | null)[];
  /** Per result column: 0 text, 1 binary (after applying the client's format codes). */
  resultFormats: number[];
  /** The columns a Describe announced; rows sent later are encoded as announced. */
  fields: FieldDescription[] | null;
  /**
   * The result read whole, for an Execute with a row limit (resumed by the next one) and for
   * answers given here; a portal whose rows were streamed keeps an empty one, as it is done.
   */
  result: PortalResult | null;
}

interface PortalResult {
  fields: FieldDescription[];
  rows: DuckDBValue[][];
  sent: number;
  truncated: boolean;
  tag: string;
}

type Phase = "startup" | "sasl-initial" | "sasl-final" | "ready" | "closed";

export class Session {
  readonly processId = randomInt(1, 2 ** 31 - 1);
  readonly secret = randomInt(1, 2 ** 31 - 1);
  readonly #splitter = new MessageSplitter();
  #phase: Phase = "startup";
  #user = "";
  /** Set at login from the role of the secret that proved it. */
  #access: AccessOptions = {};
  #scram: ScramExchange | null = null;
  #transaction: TransactionStatus = "I";
  /** After an error in the extended protocol, messages are skipped until Sync. */
  #skipUntilSync = false;
  readonly #statements = new Map<string, PreparedStatement>();
  readonly #portals = new Map<string, Portal>();
  readonly #cursors = new Map<string, OpenCursor>();
  #running: AbortController | null = null;
  /** Messages are handled one at a time, in order. */
  #queue: Promise<void> = Promise.resolve();

  /** Whether the connection switched to TLS. */
  #secure = false;

  constructor(
    private socket: Socket,
    private readonly options: SessionOptions,
  ) {
    this.#listen(socket);
  }

  #listen(socket: Socket): void {
    socket.on("data", (chunk: Buffer) => {
      this.#splitter.push(chunk);
      this.#queue = this.#queue.then(() => this.#drain()).catch((error) => this.#fail(error));
    });
    socket.on("error", () => this.#close());
    socket.on("close", () => this.#close());
  }

  /** After answering an SSLRequest with "S": the rest of the connection is TLS. */
  #startTls(context: SecureContext): void {
    const plain = this.socket;
    plain.removeAllListeners("data");
    const secure = new TLSSocket(plain, { isServer: true, secureContext: context });
    this.#listen(secure);
    this.socket = secure;
    this.#secure = true;
  }

  /** Interrupts the running query, as a CancelRequest asks. */
  cancel(): void {
    this.#running?.abort();
  }

  get #key(): string {
    return `${this.processId}:${this.secret}`;
  }

  async #drain(): Promise<void> {
    while (this.#phase !== "closed") {
      if (this.#phase === "startup") {
        const packet = this.#splitter.nextStartup();
        if (packet === null) return;
        this.#startup(packet);
        continue;
      }
      const message = this.#splitter.next(this.options.maxMessageBytes);
      if (message === null) return;
      await this.#message(message.type, message.body);
    }
  }

  #startup(packet: Buffer): void {
    const reader = new MessageReader(packet);
    const code = reader.int32();
    const { tls } = this.options;
    if (code === SSL_REQUEST && tls && !this.#secure) {
      this.socket.write("S");
      this.#startTls(tls.context);
      return;
    }
    if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
      // No TLS configured (or asked twice), no GSSAPI: the client continues in plain text or gives up.
      this.socket.write("N");
      return;
    }
    if (code === CANCEL_REQUEST) {
      const key = `${reader.int32()}:${reader.int32()}`;
      this.options.registry.get(key)?.cancel();
      this.#close();
      return;
    }
    if (code !== PROTOCOL_3) {
      throw new ProtocolError(`unsupported protocol version ${code >> 16}.${code & 0xffff}; use 3.0`);
    }
    if (tls?.required && !this.#secure) {
      this.#fatal(
        "28000",
        "this server accepts only TLS connections: connect with sslmode=require or verify-full",
      );
      return;
    }
    const parameters = new Map<string, string>();
    for (let name = reader.cstring(); name !== ""; name = reader.cstring())
      parameters.set(name, reader.cstring());
    this.#user = parameters.get("user") ?? "";
    if (this.options.verifiers.empty) {
      this.#fatal("28000", "the Postgres port needs an API token to log in with; set admin_token");
      return;
    }
    this.#scram = this.options.verifiers.exchange(this.#user);
    this.#phase = "sasl-initial";
    this.socket.write(
      new MessageWriter("R")
        .int32(10)
        .cstring(MECHANISM)
        .bytes(Buffer.from([0]))
        .end(),
    );
  }

  async #message(type: string, body: Buffer): Promise<void> {
    const reader = new MessageReader(body);
    if (this.#phase === "sasl-initial" || this.#phase === "sasl-final") {
      if (type !== "p") throw new ProtocolError(`expected a password message, got "${type}"`);
      this.#authenticate(reader);
      return;
    }
    if (type === "X") {
      this.#close();
      return;
    }
    if (this.#skipUntilSync && type !== "S") return;
    switch (type) {
      case "Q":
        await this.#simpleQuery(reader.cstring());
        return;
      case "P":
        return this.#extended(() => this.#parse(reader));
      case "B":
        return this.#extended(() => this.#bind(reader));
      case "D":
        return this.#extended(() => this.#describe(reader));
      case "E":
        return this.#extended(() => this.#execute(reader));
      case "C":
        return this.#extended(() => this.#closeStatementOrPortal(reader));
      case "H":
        return;
      case "S":
        this.#skipUntilSync = false;
        this.socket.write(readyForQuery(this.#transaction));
        return;
      default:
        throw new ProtocolError(`unsupported message type "${type}"`);
    }
  }

  #authenticate(reader: MessageReader): void {
    const scram = this.#scram as ScramExchange;
    let serverFinal: string;
    try {
      if (this.#phase === "sasl-initial") {
        const mechanism = reader.cstring();
        if (mechanism !== MECHANISM) throw new ScramError(`unsupported SASL mechanism ${mechanism}`);
        const length = reader.int32();
        const serverFirst = scram.start(reader.bytes(length).toString("utf8"));
        this.#phase = "sasl-final";
        this.socket.write(new MessageWriter("R").int32(11).bytes(Buffer.from(serverFirst)).end());
        return;
      }
      const outcome = scram.finish(reader.rest().toString("utf8"));
      if (outcome === null) {
        this.#fatal("28P01", `password authentication failed for user "${this.#user}"`);
        return;
      }
      serverFinal = outcome.serverFinal;
      this.#access = this.options.accessFor(outcome.role);
    } catch (error) {
      if (!(error instanceof ScramError)) throw error;
      this.#fatal("28P01", error.message);
      return;
    }
    this.socket.write(new MessageWriter("R").int32(12).bytes(Buffer.from(serverFinal)).end());
    this.#ready();
  }

  /** A Query message: each of its statements in turn, as PostgreSQL does, until one fails. */
  async #simpleQuery(sql: string): Promise<void> {
    try {
      const statements = splitStatements(sql);
      if (statements.length === 0) this.socket.write(emptyQueryResponse());
      for (const text of statements) {
        const portal: Portal = {
          statement: this.#prepare(text, []),
          params: [],
          resultFormats: [],
          fields: null,
          result: null,
        };
        if (portal.statement.local) {
          await this.#run(portal);
          this.#sendRows(portal, 0, true);
        } else if (portal.statement.copy) await this.#copyOut(portal);
        else if (portal.statement.cursor) await this.#cursorStatement(portal, true);
        else await this.#stream(portal, true);
      }
    } catch (error) {
      this.#sendError(error);
    }
    this.socket.write(readyForQuery(this.#transaction));
  }

  #prepare(sql: string, declaredTypes: number[]): PreparedStatement {
    const local = answerLocally(sql, this.options.engineSettings);
    const copy = local ? null : parseCopy(sql);
    const cursor = local || copy ? null : parseCursorStatement(sql);
    const query = copy?.query ?? (cursor?.kind === "declare" ? cursor.query : sql);
    return {
      sql: toDuckDbSql(query, { user: this.#user }),
      declaredTypes,
      local,
      copy,
      cursor,
    };
  }

  /** Runs one extended-protocol step; an error skips the rest until Sync, as PostgreSQL does. */
  async #extended(step: () => void | Promise<void>): Promise<void> {
    try {
      await step();
    } catch (error) {
      this.#sendError(error);
      this.#skipUntilSync = true;
    }
  }

  #parse(reader: MessageReader): void {
    const name = reader.cstring();
    const sql = reader.cstring();
    const count = reader.int16();
    const declaredTypes: number[] = [];
    for (let index = 0; index < count; index++) declaredTypes.push(reader.int32());
    this.#statements.set(name, this.#prepare(sql, declaredTypes));
    this.socket.write(parseComplete());
  }

  async #bind(reader: MessageReader): Promise<void> {
    const portalName = reader.cstring();
    const statementName = reader.cstring();
    const statement = this.#statements.get(statementName);
    if (!statement) throw new QueryError(`prepared statement "${statementName}" does not exist`);
    const formatCount = reader.int16();
    const formats: number[] = [];
    for (let index = 0; index < formatCount; index++) formats.push(reader.int16());
    const paramCount = reader.int16();
    const params: (string | Buffer | null)[] = [];
    let types = statement.declaredTypes;
    for (let index = 0; index < paramCount; index++) {
      const length = reader.int32();
      if (length === -1) {
        params.push(null);
        continue;
      }
      const data = reader.bytes(length);
      const format = formats.length === 1 ? formats[0] : (formats[index] ?? 0);
      if (format !== 1) {
        params.push(data.toString("utf8"));
        continue;
      }
      // A binary value is read by its type: the declared one, else the one the statement expects.
      if (!types[index]) types = await this.#parameterTypes(statement);
      params.push(decodeBinaryParameter(data, types[index] ?? 0));
    }
    const resultCount = reader.int16();
    const resultFormats: number[] = [];
    for (let index = 0; index < resultCount; index++) resultFormats.push(reader.int16());
    this.#portals.set(portalName, { statement, params, resultFormats, fields: null, result: null });
    this.socket.write(bindComplete());
  }

  async #describe(reader: MessageReader): Promise<void> {
    const kind = String.fromCharCode(reader.byte());
    const name = reader.cstring();
    if (kind === "S") {
      const statement = this.#statements.get(name);
      if (!statement) throw new QueryError(`prepared statement "${name}" does not exist`);
      if (statement.local) {
        this.socket.write(parameterDescription([]));
        this.socket.write(
          statement.local.columns.length > 0 ? rowDescription(localFields(statement.local)) : noData(),
        );
        return;
      }
      if (statement.cursor && statement.cursor.kind !== "declare") {
        this.socket.write(parameterDescription([]));
        this.socket.write(this.#fetchDescription(statement.cursor, []));
        return;
      }
      const description = await this.options.warehouse.describe(statement.sql, this.#access);
      this.socket.write(parameterDescription(parameterOids(statement, description.parameters)));
      // A COPY returns no rows but COPY data, as PostgreSQL describes it.
      const columns = renameColumns(description.columns, await this.#columnNames(statement));
      this.socket.write(
        columns.length > 0 && !statement.copy && !statement.cursor
          ? rowDescription(resultFields(columns, []))
          : noData(),
      );
      return;
    }
    const portal = this.#portals.get(name);
    if (!portal) throw new QueryError(`portal "${name}" does not exist`);
    if (portal.statement.copy) {
      this.socket.write(noData());
      return;
    }
    if (portal.statement.cursor) {
      this.socket.write(this.#fetchDescription(portal.statement.cursor, portal.resultFormats));
      return;
    }
    let fields: FieldDescription[];
    // A portal is described with its values bound, not run, so that its Execute can stream; but one
    // already read and one answered here have their fields.
    if (portal.statement.local || portal.result) {
      await this.#run(portal);
      fields = portal.result?.fields ?? [];
    } else {
      const description = await this.options.warehouse.describe(portal.statement.sql, {
        ...this.#access,
        params: portal.params,
      });
      const names = await this.#columnNames(portal.statement);
      fields = resultFields(renameColumns(description.columns, names), portal.resultFormats);
      portal.fields = fields;
    }
    this.socket.write(fields.length > 0 ? rowDescription(fields) : noData());
  }

  /** The parameter types of a statement: as declared, else as DuckDB infers them. */
  async #parameterTypes(statement: PreparedStatement): Promise<number[]> {
    if (statement.local) return statement.declaredTypes;
    const description = await this.options.warehouse.describe(statement.sql, this.#access);
    return parameterOids(statement, description.parameters);
  }

  async #execute(reader: MessageReader): Promise<void> {
    const name = reader.cstring();
    const maxRows = reader.int32();
    const portal = this.#portals.get(name);
    if (!portal) throw new QueryError(`portal "${name}" does not exist`);
    if (portal.statement.copy) {
      await this.#copyOut(portal);
      return;
    }
    if (portal.statement.cursor) {
      await this.#cursorStatement(portal, false);
      return;
    }
    if (maxRows === 0 && !portal.result && !portal.statement.local) {
      await this.#stream(portal, false);
      return;
    }
    await this.#run(portal);
    this.#sendRows(portal, maxRows, false);
  }

  /**
   * Runs a portal's statement and sends its rows as DuckDB produces them, waiting for the client
   * to take them (so a large result never sits in memory); cut after `maxRows` with a warning.
   */
  async #stream(portal: Portal, withDescription: boolean): Promise<void> {
    const names = await this.#columnNames(portal.statement);
    let fields = portal.fields;
    let sent = 0;
    let truncated = false;
    await this.#cancellable((signal) =>
      this.options.warehouse.stream(
        portal.statement.sql,
        {
          start: (columns) => {
            fields ??= resultFields(renameColumns(columns, names), portal.resultFormats);
            if (withDescription) this.socket.write(rowDescription(fields));
          },
          rows: async (rows) => {
            const room = this.options.maxRows - sent;
            truncated = rows.length > room;
            const batch = truncated ? rows.slice(0, room) : rows;
            sent += batch.length;
            await this.#writePaced(dataRows(batch, fields ?? []), signal);
            return !truncated;
          },
        },
        { ...this.#access, params: portal.params, signal },
      ),
    );
    portal.result = { fields: fields ?? [], rows: [], sent: 0, truncated: false, tag: "SELECT 0" };
    if (truncated) {
      this.socket.write(noticeResponse(`the result was cut to its first ${this.options.maxRows} rows`));
    }
    this.socket.write(commandComplete(selectTag(portal.statement.sql, sent)));
  }

  /**
   * Runs a COPY … TO STDOUT: its query's rows as COPY data, streamed as DuckDB produces them and
   * as the client takes them. An export, like the HTTP API's CSV: no row limit, the query timeout
   * applies.
   */
  async #copyOut(portal: Portal): Promise<void> {
    const copy = portal.statement.copy as CopyOut;
    const pgNames = await this.#columnNames(portal.statement);
    let names: string[] = [];
    let oids: number[] = [];
    let copied = 0;
    await this.#cancellable((signal) =>
      this.options.warehouse.stream(
        portal.statement.sql,
        {
          start: (columns) => {
            names = renameColumns(columns, pgNames).map((column) => column.name);
            oids = columns.map((column) => pgTypeOid(column.type));
            this.socket.write(copyOutResponse(columns.length));
            if (copy.header) this.socket.write(copyData([copyHeader(names, copy)]));
          },
          rows: async (rows) => {
            const lines = rows.map((row) =>
              copyLine(
                row.map((value, column) => encodeText(value, oids[column] as number)),
                copy,
                names,
              ),
            );
            copied += rows.length;
            await this.#writePaced(copyData(lines), signal);
            return true;
          },
        },
        { ...this.#access, params: portal.params, signal },
      ),
    );
    this.socket.write(copyDone());
    this.socket.write(commandComplete(`COPY ${copied}`));
  }

  /** DECLARE, FETCH, MOVE or CLOSE (cursors.ts). */
  async #cursorStatement(portal: Portal, withDescription: boolean): Promise<void> {
    const statement = portal.statement.cursor as CursorStatement;
    if (this.#transaction === "E") throw new TransactionAbortedError();
    if (statement.kind === "declare") {
      if (!statement.hold && this.#transaction !== "T") {
        throw new CursorError("DECLARE CURSOR can only be used in transaction blocks", "25P01");
      }
      if (this.#cursors.has(statement.name)) {
        throw new CursorError(`cursor "${statement.name}" already exists`, "42P03");
      }
      // Each open cursor holds a query engine connection and its snapshot's files.
      if (this.#cursors.size >= MAX_OPEN_CURSORS) {
        throw new CursorError(`too many open cursors (${MAX_OPEN_CURSORS}): close some first`, "53000");
      }
      const names = await this.#columnNames(portal.statement);
      const cursor = new Cursor(statement.hold, (sink, signal) =>
        this.options.warehouse.stream(portal.statement.sql, sink, {
          ...this.#access,
          params: portal.params,
          signal,
        }),
      );
      const columns = renameColumns(await cursor.columns, names);
      this.#cursors.set(statement.name, { cursor, columns, inTransaction: this.#transaction === "T" });
      this.socket.write(commandComplete("DECLARE CURSOR"));
      return;
    }
    if (statement.kind === "close") {
      if (statement.name !== null && !this.#cursors.has(statement.name)) {
        throw new CursorError(`cursor "${statement.name}" does not exist`, "34000");
      }
      this.#closeCursors((_open, name) => statement.name === null || name === statement.name);
      this.socket.write(commandComplete("CLOSE CURSOR"));
      return;
    }
    const open = this.#cursors.get(statement.name);
    if (!open) throw new CursorError(`cursor "${statement.name}" does not exist`, "34000");
    // A CancelRequest stops the cursor's query, which ends the wait.
    const fields = resultFields(open.columns, portal.resultFormats);
    if (statement.kind === "fetch" && withDescription) this.socket.write(rowDescription(fields));
    // Rows go out (or, for MOVE, are dropped) a part at a time: FETCH ALL of a large result is
    // never held whole, and waits for the client to take each part.
    let moved = 0;
    await this.#cancellable(async (signal) => {
      signal.addEventListener("abort", () => open.cursor.close());
      while (moved < statement.count) {
        const wanted = Math.min(statement.count - moved, ROWS_PER_WRITE);
        const rows = await open.cursor.take(wanted);
        moved += rows.length;
        if (statement.kind === "fetch") await this.#writePaced(dataRows(rows, fields), signal);
        if (rows.length < wanted) break;
      }
    });
    this.socket.write(commandComplete(`${statement.kind === "fetch" ? "FETCH" : "MOVE"} ${moved}`));
  }

  /** What a FETCH of an open cursor returns; no rows for the other cursor statements. */
  #fetchDescription(statement: CursorStatement, formats: number[]): Buffer {
    const open = statement.kind === "fetch" ? this.#cursors.get(statement.name) : undefined;
    return open ? rowDescription(resultFields(open.columns, formats)) : noData();
  }

  /**
   * What DEALLOCATE and DISCARD ALL drop, as PostgreSQL does: a pooler (PgBouncer) sends DISCARD ALL
   * before handing the connection to its next client, who must not inherit cursors or statements.
   */
  #forget(drops: LocalAnswer["drops"]): void {
    if (drops === "everything") {
      this.#closeCursors(() => true);
      this.#portals.clear();
    }
    if (drops === "everything" || drops === "statements") this.#statements.clear();
    else if (drops !== undefined) this.#statements.delete(drops.statement);
  }

  #closeCursors(which: (open: OpenCursor, name: string) => boolean): void {
    for (const [name, open] of this.#cursors) {
      if (!which(open, name)) continue;
      open.cursor.close();
      this.#cursors.delete(name);
    }
  }

  /** PostgreSQL's names for the statement's unnamed result columns (column-names.ts), parsed once per SQL text. */
  #columnNames(statement: PreparedStatement): Promise<SelectListNames | null> {
    const { sql } = statement;
    if (/^\s*explain\b/i.test(sql)) return Promise.resolve(null);
    let names = COLUMN_NAMES.get(sql);
    if (names === undefined) {
      names = this.options.warehouse.parse(sql).then(
        (tree) => postgresColumnNames(tree, sql),
        () => null,
      );
      if (COLUMN_NAMES.size >= COLUMN_NAMES_KEPT) COLUMN_NAMES.clear();
      COLUMN_NAMES.set(sql, names);
    }
    return names;
  }

  /** Writes, then waits until the client has taken what is buffered: a slow reader slows the query. */
  async #writePaced(messages: Buffer, signal: AbortSignal): Promise<void> {
    if (!this.socket.write(messages)) await once(this.socket, "drain", { signal });
  }

  /** Runs warehouse work that a CancelRequest stops; refused while the transaction is aborted. */
  async #cancellable<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.#transaction === "E") throw new TransactionAbortedError();
    const running = new AbortController();
    this.#running = running;
    try {
      return await work(running.signal);
    } catch (error) {
      if (running.signal.aborted) throw new CanceledError();
      throw error;
    } finally {
      this.#running = null;
    }
  }

  #closeStatementOrPortal(reader: MessageReader): void {
    const kind = String.fromCharCode(reader.byte());
    const name = reader.cstring();
    if (kind === "S") this.#statements.delete(name);
    else this.#portals.delete(name);
    this.socket.write(closeComplete());
  }

  /** Computes a portal's result once; later Describe/Execute calls reuse it. */
  async #run(portal: Portal): Promise<void> {
    if (portal.result) return;
    const { local } = portal.statement;
    if (local) {
      if (local.transaction === "begin") this.#transaction = "T";
      if (local.transaction === "end") {
        this.#closeCursors((open) => !open.cursor.hold || (local.tag === "ROLLBACK" && open.inTransaction));
        for (const open of this.#cursors.values()) open.inTransaction = false;
        this.#transaction = "I";
      }
      this.#forget(local.drops);
      portal.result = {
        fields: localFields(local),
        rows: local.rows,
        sent: 0,
        truncated: false,
        tag: local.tag,
      };
      return;
    }
    const result = await this.#cancellable((signal) =>
      this.options.warehouse.rows(portal.statement.sql, {
        ...this.#access,
        params: portal.params,
        maxRows: this.options.maxRows,
        signal,
      }),
    );
    portal.result = {
      fields: resultFields(
        renameColumns(result.columns, await this.#columnNames(portal.statement)),
        portal.resultFormats,
      ),
      rows: result.rows,
      sent: 0,
      truncated: result.truncated,
      tag: selectTag(portal.statement.sql, result.rows.length),
    };
  }

  /** Sends rows of a portal's result: all, or at most `limit` (then PortalSuspended if more remain). */
  #sendRows(portal: Portal, limit: number, withDescription: boolean): void {
    const result = portal.result as PortalResult;
    if (withDescription && result.fields.length > 0) this.socket.write(rowDescription(result.fields));
    const end = limit > 0 ? Math.min(result.rows.length, result.sent + limit) : result.rows.length;
    for (let from = result.sent; from < end; from += ROWS_PER_WRITE) {
      this.socket.write(
        dataRows(result.rows.slice(from, Math.min(end, from + ROWS_PER_WRITE)), result.fields),
      );
    }
    result.sent = end;
    if (end < result.rows.length) {
      this.socket.write(portalSuspended());
      return;
    }
    if (result.truncated) {
      this.socket.write(noticeResponse(`the result was cut to its first ${this.options.maxRows} rows`));
    }
    this.socket.write(commandComplete(result.tag));
  }

  #sendError(error: unknown): void {
    if (this.#transaction === "T") this.#transaction = "E";
    this.socket.write(errorResponse(errorFields(error)));
  }

  /** Refuses the connection with a FATAL error. */
  #fatal(code: string, message: string): void {
    this.socket.end(errorResponse({ severity: "FATAL", code, message }));
    this.#close();
  }

  #fail(error: unknown): void {
    if (this.#phase === "closed") return;
    const message = error instanceof ProtocolError ? error.message : "internal error";
    this.#fatal("08P01", message);
  }

  #close(): void {
    if (this.#phase === "closed") return;
    this.#phase = "closed";
    this.options.registry.delete(this.#key);
    this.#running?.abort();
    this.#closeCursors(() => true);
    if (!this.socket.destroyed) this.socket.end();
  }

  /** Called once authentication succeeded. */
  #ready(): void {
    this.#phase = "ready";
    this.options.registry.set(this.#key, this);
    const messages = [authenticationOk()];
    for (const [name, value] of Object.entries(SERVER_PARAMETERS))
      messages.push(parameterStatus(name, value));
    messages.push(backendKeyData(this.processId, this.secret), readyForQuery("I"));
    this.socket.write(Buffer.concat(messages));
  }
}

/** Column names by SQL text, shared by the sessions: BI tools send the same statements again and again. */
const COLUMN_NAMES = new Map<string, Promise<SelectListNames | null>>();
const COLUMN_NAMES_KEPT = 1000;

/** CommandComplete's tag of a query that returned `rows` rows. */
const selectTag = (sql: string, rows: number): string =>
  /^\s*explain\b/i.test(sql) ? "EXPLAIN" : `SELECT ${rows}`;

/** Rows of a result read whole that go to the socket in one write. */
const ROWS_PER_WRITE = 2048;

/** Cursors one session may have open at once. */
const MAX_OPEN_CURSORS = 64;

/** Rows as DataRow messages, each value in its column's format. */
function dataRows(rows: DuckDBValue[][], fields: FieldDescription[]): Buffer {
  const messages = new DataRows();
  const binary = fields.map((field) => field.format === 1);
  const oids = fields.map((field) => field.typeOid);
  for (const row of rows) {
    messages.row(
      row.map((value, column) =>
        binary[column]
          ? encodeBinary(value, oids[column] as number)
          : encodeText(value, oids[column] as number),
      ),
    );
  }
  return messages.messages();
}

class CanceledError extends Error {
  override message = "canceling statement due to user request";
}

class TransactionAbortedError extends PgError {
  constructor() {
    super("current transaction is aborted, commands ignored until end of transaction block", "25P02");
  }
}

function errorFields(error: unknown): ErrorFields {
  if (error instanceof CanceledError || error instanceof QueryTimeout)
    return { severity: "ERROR", code: "57014", message: error.message };
  if (error instanceof PgError) return { severity: "ERROR", code: error.code, message: error.message };
  const message = error instanceof Error ? error.message : String(error);
  return { severity: "ERROR", code: sqlState(message), message };
}

/** An SQLSTATE for DuckDB's error classes, so clients can tell them apart. */
function sqlState(message: string): string {
  if (message.startsWith("Only read-only")) return "25006";
  if (
    message.startsWith("Permission Error") ||
    message.startsWith("Not allowed") ||
    /disabled (?:through|by) configuration/.test(message)
  )
    return "42501";
  if (message.startsWith("Parser Error")) return "42601";
  if (message.startsWith("Catalog Error")) return "42P01";
  if (message.startsWith("Binder Error")) return "42703";
  if (message.startsWith("Conversion Error") || message.startsWith("Invalid Input Error")) return "22P02";
  if (message.startsWith("INTERRUPT")) return "57014";
  if (message.startsWith("Out of Memory")) return "53200";
  return "XX000";
}

/** OIDs of a statement's parameters: as the client declared them, else from DuckDB's types (text when open). */
function parameterOids(statement: PreparedStatement, inferred: DuckDBTypeId[]): number[] {
  return inferred.map((typeId, index) => {
    const declared = statement.declaredTypes[index] ?? 0;
    return declared !== 0 ? declared : typeId === DuckDBTypeId.INVALID ? OID.text : pgTypeOidOfId(typeId);
  });
}

function resultFields(columns: ResultColumn[], formats: number[]): FieldDescription[] {
  return columns.map((column, index) => {
    const typeOid = pgTypeOid(column.type);
    const requested = formats.length === 1 ? formats[0] : (formats[index] ?? 0);
    const binary = requested === 1 && canSendBinary(typeOid);
    return {
      name: column.name,
      // A type without a binary encoding here is announced as text, whose binary form is its text.
      typeOid: requested === 1 && !binary ? OID.text : typeOid,
      typeSize: typeSize(typeOid),
      format: requested === 1 ? 1 : 0,
    };
  });
}

function localFields(local: LocalAnswer): FieldDescription[] {
  return local.columns.map((name) => ({ name, typeOid: OID.text, typeSize: -1, format: 0 }));
}
