// Check podsnoop's opentelemetry-proto subset (proto/opentelemetry) against the
// OpenTelemetry project's own definitions, as npm ships them:
//   - @opentelemetry/otlp-transformer's generated module (opentelemetry-proto v1.7.0,
//     encode/decode code generated from the official files): every message of ours
//     has the same fields by name, and a message with any one field set, encoded with
//     our definitions, decodes to the same value with theirs (same number, same wire
//     type); enums have the same values; sum/min/max keep their presence (a 0 sent);
//   - @opentelemetry/otlp-grpc-exporter-base's raw .proto files (v0.18): every field
//     both know has the same number, type and label.
// Usage: node check_proto.js PROTO_DIR NODE_MODULES. Prints one line per problem and
// "ok N messages, M fields" at the end; exit 1 on any problem.
"use strict";
const path = require("path");
const [protoDir, mods] = process.argv.slice(2);
const protobuf = require(path.join(mods, "protobufjs"));
const official = require(path.join(mods, "@opentelemetry/otlp-transformer/build/src/generated/root.js"));
const rawDir = path.join(mods, "@opentelemetry/otlp-grpc-exporter-base/build/protos");

const FILES = [
	"opentelemetry/proto/collector/logs/v1/logs_service.proto",
	"opentelemetry/proto/collector/metrics/v1/metrics_service.proto",
];

function load(dir) {
	const root = new protobuf.Root();
	root.resolvePath = (origin, target) => path.join(dir, target);
	root.loadSync(FILES);
	root.resolveAll();
	return root;
}

const problems = [];
const bad = (msg) => problems.push(msg);

function allTypes(ns, out = []) {
	for (const o of ns.nestedArray) {
		if (o instanceof protobuf.Type || o instanceof protobuf.Enum)
			out.push(o);
		if (o.nestedArray)
			allTypes(o, out);
	}
	return out;
}

function staticOf(fullName) {
	let o = official;
	for (const part of fullName.replace(/^\./, "").split(".")) {
		o = o && o[part];
	}
	return o;
}

// A value for field f unlike any default, nested messages one level filled.
function sample(f, depth) {
	const one = (k) => {
		if (f.resolvedType instanceof protobuf.Enum) {
			const vals = Object.values(f.resolvedType.values);
			return Math.max(...vals);
		}
		if (f.resolvedType instanceof protobuf.Type)
			return depth > 0 ? fill(f.resolvedType, depth - 1) : {};
		switch (f.type) {
		case "string": return "s" + f.id + "\u00e9" + k;
		case "bytes": return Buffer.from([f.id, 0xff, k]);
		case "bool": return true;
		case "double": case "float": return f.id + 0.5 + k;
		case "int32": case "sint32": case "sfixed32": return -(f.id + k);
		case "uint32": case "fixed32": return 4000000000 + f.id + k;
		case "int64": case "sint64": case "sfixed64": return "-" + (9000000000 + f.id + k);
		case "uint64": case "fixed64": return "" + (18000000000000000000n + BigInt(f.id + k));
		}
		throw new Error("no sample for " + f.type);
	};
	return f.repeated ? [one(1), one(2)] : one(0);
}

// every field not in a oneof, and the first member of each oneof
function fill(t, depth) {
	const o = {};
	for (const f of t.fieldsArray)
		if (!f.partOf || f.partOf.fieldsArray[0] === f)
			o[f.name] = sample(f, depth);
	return o;
}

const CONV = { longs: String, enums: Number, bytes: String, defaults: false, oneofs: true };

function roundTrip(ours, t, obj, what) {
	const S = staticOf(t.fullName);
	let bytes, got, want;
	try {
		bytes = ours.lookupType(t.fullName).encode(t.fromObject(obj)).finish();
		want = t.toObject(t.decode(bytes), CONV);
		got = S.toObject(S.decode(bytes), CONV);
	} catch (e) {
		return bad(`${t.fullName}: ${what}: ${e.message}`);
	}
	const a = JSON.stringify(want), b = JSON.stringify(got);
	if (a !== b)
		bad(`${t.fullName}: ${what}: ours ${a}, official ${b}`);
}

// (Type.isReservedId misses a single reserved number, [1000, 1000])
const reserved = (t, id) => (t.reserved || []).some((r) =>
	Array.isArray(r) && r[0] <= id && id <= r[1]);

const ours = load(protoDir);
const raw = load(rawDir);
let nMsg = 0, nField = 0;

for (const t of allTypes(ours)) {
	const S = staticOf(t.fullName);
	if (!S) {
		bad(`${t.fullName}: not in the official definitions`);
		continue;
	}
	if (t instanceof protobuf.Enum) {
		for (const [k, v] of Object.entries(t.values))
			if (S[k] !== v)
				bad(`${t.fullName}.${k}: ours ${v}, official ${S[k]}`);
		for (const k of Object.keys(S))
			if (!(k in t.values))
				bad(`${t.fullName}.${k}: missing from ours`);
		continue;
	}
	nMsg++;
	// field names: the generated class has a prototype property per field and per oneof
	const theirs = Object.getOwnPropertyNames(S.prototype).filter((k) =>
		k !== "constructor" && typeof S.prototype[k] !== "function" &&
		!(t.oneofs && k in t.oneofs));
	const mine = t.fieldsArray.map((f) => f.name);
	for (const k of theirs)
		if (!mine.includes(k))
			bad(`${t.fullName}.${k}: missing from ours`);
	for (const k of mine)
		if (!theirs.includes(k))
			bad(`${t.fullName}.${k}: not in the official message`);
	for (const f of t.fieldsArray) {
		nField++;
		roundTrip(ours, t, { [f.name]: sample(f, 1) }, f.name);
	}
	// proto3 optional (a oneof in ours): a zero is sent and arrives as present
	for (const f of t.fieldsArray)
		if (f.partOf && f.partOf.name === "_" + f.name && f.type === "double") {
			const m = staticOf(t.fullName).decode(t.encode(t.fromObject({ [f.name]: 0 })).finish());
			if (m[f.name] !== 0 || m["_" + f.name] !== f.name)
				bad(`${t.fullName}.${f.name}: a 0 does not arrive as present`);
		}
	// the raw v0.18 files: same number, type, label for what both know
	const r = raw.lookup(t.fullName);
	if (r instanceof protobuf.Type)
		for (const rf of r.fieldsArray) {
			const f = t.fields[rf.name];
			if (f && (f.id !== rf.id || f.type !== rf.type || f.repeated !== rf.repeated))
				bad(`${t.fullName}.${rf.name}: ours ${f.id}/${f.type}/${f.repeated}, ` +
				    `v0.18 ${rf.id}/${rf.type}/${rf.repeated}`);
			if (!f && !reserved(t, rf.id) && !t.fieldsById[rf.id])
				bad(`${t.fullName}.${rf.name} = ${rf.id} (v0.18): neither declared nor reserved`);
		}
}
for (const name of ["opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest",
		    "opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse",
		    "opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest",
		    "opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceResponse",
		    "opentelemetry.proto.logs.v1.LogRecord",
		    "opentelemetry.proto.metrics.v1.HistogramDataPoint"])
	if (!ours.lookup(name))
		bad(`${name}: missing from ours`);
for (const p of problems)
	console.log(p);
console.log(`${problems.length ? "FAILED" : "ok"} ${nMsg} messages, ${nField} fields, ` +
	    `${problems.length} problems`);
process.exit(problems.length ? 1 : 0);
