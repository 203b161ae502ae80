/**
 * Writes a tiny MaxMind DB (format 2.0, https://maxmind.github.io/MaxMind-DB/) with IPv4 networks
 * and their country, shaped like GeoLite2-Country records: GeoIP tests need a database file, and
 * no real one can be downloaded here.
 */

/** `cidr` like "203.0.113.0/24" → ISO country code. */
export function countryDatabase(networks: Record<string, string>): Buffer {
  const RECORD_BYTES = 3; // record size 24 bits
  /** Per node: [left, right]; a record is a node index, EMPTY, or { data: offset }. */
  const nodes: (number | { data: number } | null)[][] = [[null, null]];
  const data: Buffer[] = [];
  let dataLength = 0;
  for (const [cidr, country] of Object.entries(networks)) {
    const [address, bits] = cidr.split("/") as [string, string];
    const prefix = Number(bits);
    const ip = address.split(".").reduce((value, octet) => value * 256 + Number(octet), 0);
    const record = encode({ country: { iso_code: country } });
    const offset = dataLength;
    data.push(record);
    dataLength += record.length;
    let node = 0;
    for (let depth = 0; depth < prefix; depth++) {
      const bit = Math.floor(ip / 2 ** (31 - depth)) % 2;
      const records = nodes[node] as (number | { data: number } | null)[];
      if (depth === prefix - 1) {
        records[bit] = { data: offset };
      } else {
        let next = records[bit];
        if (typeof next !== "number") {
          nodes.push([null, null]);
          next = nodes.length - 1;
          records[bit] = next;
        }
        node = next;
      }
    }
  }
  const nodeCount = nodes.length;
  const tree = Buffer.alloc(nodeCount * 2 * RECORD_BYTES);
  nodes.forEach((records, index) => {
    records.forEach((record, side) => {
      const value =
        record === null ? nodeCount : typeof record === "number" ? record : nodeCount + 16 + record.data;
      tree.writeUIntBE(value, (index * 2 + side) * RECORD_BYTES, RECORD_BYTES);
    });
  });
  const metadata = encode({
    node_count: { uint32: nodeCount },
    record_size: { uint16: 24 },
    ip_version: { uint16: 4 },
    database_type: "Sluice-Test-Country",
    languages: ["en"],
    binary_format_major_version: { uint16: 2 },
    binary_format_minor_version: { uint16: 0 },
    build_epoch: { uint32: 1_700_000_000 },
    description: { en: "Sluice test countries" },
  });
  return Buffer.concat([
    tree,
    Buffer.alloc(16),
    ...data,
    Buffer.from("ABCDEF4D61784D696E642E636F6D", "hex"),
    metadata,
  ]);
}

type Value = string | Value[] | { uint16: number } | { uint32: number } | { [key: string]: Value };

function control(type: number, size: number): Buffer {
  if (size >= 29) throw new Error("the test writer only encodes sizes below 29");
  return type <= 7 ? Buffer.from([(type << 5) | size]) : Buffer.from([size, type - 7]);
}

function unsigned(type: number, value: number): Buffer {
  const bytes: number[] = [];
  for (let rest = value; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Buffer.concat([control(type, bytes.length), Buffer.from(bytes)]);
}

function encode(value: Value): Buffer {
  if (typeof value === "string") {
    const bytes = Buffer.from(value);
    return Buffer.concat([control(2, bytes.length), bytes]);
  }
  if (Array.isArray(value)) return Buffer.concat([control(11, value.length), ...value.map(encode)]);
  if ("uint16" in value && typeof value.uint16 === "number") return unsigned(5, value.uint16);
  if ("uint32" in value && typeof value.uint32 === "number") return unsigned(6, value.uint32);
  const entries = Object.entries(value as Record<string, Value>);
  return Buffer.concat([
    control(7, entries.length),
    ...entries.flatMap(([key, item]) => [encode(key), encode(item)]),
  ]);
}
