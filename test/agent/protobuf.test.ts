/**
 * The minimal proto3 codec, cross-checked against protobufjs (the reference implementation
 * `@grpc/proto-loader` uses) on a schema with every field kind the CRI client needs.
 */
import * as protobuf from "protobufjs";
import { type ProtoSchema, ProtobufError, decode, encode } from "../../agent/src/protobuf";

const SCHEMA: ProtoSchema = {
  messages: {
    Inner: { name: { id: 1, kind: "string" }, count: { id: 2, kind: "uint32" } },
    Outer: {
      text: { id: 1, kind: "string" },
      flag: { id: 2, kind: "bool" },
      small: { id: 3, kind: "uint32" },
      big: { id: 4, kind: "int64" },
      mode: { id: 5, kind: "enum", type: "Mode" },
      inner: { id: 6, kind: "message", type: "Inner" },
      items: { id: 7, kind: "message", type: "Inner", repeated: true },
      labels: { id: 8, kind: "map" },
    },
  },
  enums: { Mode: { POD: 0, CONTAINER: 1, NODE: 2 } },
};

// The same messages for protobufjs, plus fields this codec does not know (one per wire type),
// as a newer server would send them.
// (The cast: protobufjs types map fields as IMapField, which its INamespace typing does not admit.)
const root = protobuf.Root.fromJSON({
  nested: {
    Mode: { values: { POD: 0, CONTAINER: 1, NODE: 2 } },
    Inner: { fields: { name: { type: "string", id: 1 }, count: { type: "uint32", id: 2 } } },
    Outer: {
      fields: {
        text: { type: "string", id: 1 },
        flag: { type: "bool", id: 2 },
        small: { type: "uint32", id: 3 },
        big: { type: "int64", id: 4 },
        mode: { type: "Mode", id: 5 },
        inner: { type: "Inner", id: 6 },
        items: { rule: "repeated", type: "Inner", id: 7 },
        labels: { keyType: "string", type: "string", id: 8 },
        newVarint: { type: "int32", id: 20 },
        newFixed64: { type: "fixed64", id: 21 },
        newBytes: { type: "bytes", id: 22 },
        newFixed32: { type: "fixed32", id: 23 },
        newMessage: { type: "Inner", id: 24 },
      },
    },
  },
} as protobuf.INamespace);
const Outer = root.lookupType("Outer");
const refDecode = (bytes: Uint8Array) =>
  Outer.toObject(Outer.decode(bytes), { longs: String, enums: String, defaults: true });

const DEFAULTS = {
  text: "",
  flag: false,
  small: 0,
  big: "0",
  mode: "POD",
  inner: null,
  items: [],
  labels: {},
};

const FULL = {
  text: "héllo, wörld",
  flag: true,
  small: 4294967295,
  big: "-9007199254740993",
  mode: "NODE",
  inner: { name: "a", count: 300 },
  items: [
    { name: "x", count: 0 },
    { name: "", count: 7 },
  ],
  labels: { app: "vnode", "": "empty key", k: "" },
};

describe("protobuf codec", () => {
  it("decodes an empty message to the proto3 defaults, like proto-loader with defaults: true", () => {
    expect(decode(SCHEMA, "Outer", new Uint8Array())).toEqual(DEFAULTS);
    expect(decode(SCHEMA, "Outer", new Uint8Array())).toEqual({
      ...refDecode(new Uint8Array()),
      newVarint: undefined,
      newFixed64: undefined,
      newBytes: undefined,
      newFixed32: undefined,
      newMessage: undefined,
    });
  });

  it("encodes what protobufjs decodes to the same values", () => {
    const bytes = encode(SCHEMA, "Outer", FULL);
    const ref = refDecode(bytes);
    expect({
      text: ref.text,
      flag: ref.flag,
      small: ref.small,
      big: ref.big,
      mode: ref.mode,
      inner: ref.inner,
      items: ref.items,
      labels: ref.labels,
    }).toEqual(FULL);
    expect(decode(SCHEMA, "Outer", bytes)).toEqual(FULL);
  });

  it("decodes what protobufjs encodes, skipping fields it does not know", () => {
    const bytes = Outer.encode(
      Outer.fromObject({
        ...FULL,
        newVarint: -5,
        newFixed64: "18446744073709551615",
        newBytes: Buffer.from([1, 2, 3]),
        newFixed32: 42,
        newMessage: { name: "future", count: 1 },
      }),
    ).finish();
    expect(decode(SCHEMA, "Outer", bytes)).toEqual(FULL);
  });

  it("leaves proto3 defaults off the wire and accepts int64 as number, string or bigint", () => {
    expect(encode(SCHEMA, "Outer", DEFAULTS)).toEqual(Buffer.alloc(0));
    const viaString = encode(SCHEMA, "Outer", { big: "12345678901234567" });
    expect(encode(SCHEMA, "Outer", { big: 12345678901234 })).toEqual(
      encode(SCHEMA, "Outer", { big: "12345678901234" }),
    );
    expect(encode(SCHEMA, "Outer", { big: 12345678901234567n })).toEqual(viaString);
    expect(refDecode(viaString).big).toBe("12345678901234567");
  });

  it("keeps an enum value it does not know as its number", () => {
    const bytes = Buffer.from([5 << 3, 9]);
    expect(decode(SCHEMA, "Outer", bytes).mode).toBe(9);
  });

  it("treats a map key __proto__ as data", () => {
    const bytes = encode(SCHEMA, "Outer", { labels: JSON.parse('{"__proto__": "x"}') as object });
    const labels = decode(SCHEMA, "Outer", bytes).labels as Record<string, string>;
    expect(Object.keys(labels)).toEqual(["__proto__"]);
    expect(Object.getPrototypeOf(labels)).toBe(Object.prototype);
  });

  it("names the field when a value does not fit the schema", () => {
    expect(() => encode(SCHEMA, "Outer", { colour: "red" })).toThrow(
      new ProtobufError("Outer has no field colour."),
    );
    expect(() => encode(SCHEMA, "Outer", { mode: "HOST" })).toThrow(
      'Outer.mode must be one of POD, CONTAINER, NODE; got "HOST".',
    );
    expect(() => encode(SCHEMA, "Outer", { small: -1 })).toThrow(
      "Outer.small must be an integer from 0 to 4294967295.",
    );
    expect(() => encode(SCHEMA, "Outer", { big: "1e3" })).toThrow(
      'Outer.big must be an integer; got "1e3".',
    );
    expect(() => encode(SCHEMA, "Outer", { labels: { a: 1 } })).toThrow(
      'Outer.labels["a"] must be a string.',
    );
  });

  it("rejects malformed bytes with the message type and the offset", () => {
    // text (field 1, LEN) claims 5 bytes, has 2.
    expect(() => decode(SCHEMA, "Outer", Buffer.from([0x0a, 5, 0x61, 0x62]))).toThrow(
      new ProtobufError("Outer: length 5 runs past the end at byte 2."),
    );
    // flag (field 2) sent as LEN instead of VARINT.
    expect(() => decode(SCHEMA, "Outer", Buffer.from([0x12, 0]))).toThrow(
      "Outer: field flag (2) has wire type 2, expected 0 at byte 1.",
    );
    // A varint whose continuation bit never clears.
    expect(() => decode(SCHEMA, "Outer", Buffer.from([0x18, 0xff, 0xff]))).toThrow(
      "Outer: truncated varint at byte 3.",
    );
    // Wire type 3 (start group) is not proto3.
    expect(() => decode(SCHEMA, "Outer", Buffer.from([(15 << 3) | 3]))).toThrow(
      "Outer: unsupported wire type 3 at byte 1.",
    );
    expect(() => decode(SCHEMA, "Nope", new Uint8Array())).toThrow("unknown message type Nope.");
  });
});
