// An OTLP/HTTP receiver for the tests, decoding with the OpenTelemetry project's own
// generated code (@opentelemetry/otlp-transformer, opentelemetry-proto v1.7.0).
//   node receiver.js NODE_MODULES OUT_DIR [PORT]
// Listens on 127.0.0.1:PORT (default a free one), printed as "port N" on stdout. For every POST:
// appends one JSON line to OUT_DIR/requests.ndjson {n, path, status, headers, error,
// request (the decoded Export*ServiceRequest, toObject: longs as strings, bytes base64)}
// and keeps the gunzipped body as OUT_DIR/<n>.pb. Answers are taken in order from
// OUT_DIR/answers.json when it exists ([{status, retry_after, rejected, message}], one
// used per request), then 200 with an empty ExportLogsServiceResponse.
"use strict";
const fs = require("fs");
const http = require("http");
const path = require("path");
const zlib = require("zlib");
const [mods, out] = process.argv.slice(2, 4).map((p) => path.resolve(p));
const listenPort = Number(process.argv[4] || 0);
const root = require(path.join(mods, "@opentelemetry/otlp-transformer/build/src/generated/root.js"));
const C = root.opentelemetry.proto.collector;
const T = {
	"/v1/logs": [C.logs.v1.ExportLogsServiceRequest, C.logs.v1.ExportLogsServiceResponse,
		     "rejectedLogRecords"],
	"/v1/metrics": [C.metrics.v1.ExportMetricsServiceRequest,
			C.metrics.v1.ExportMetricsServiceResponse, "rejectedDataPoints"],
};
let n = 0, used = 0;

function nextAnswer() {
	const f = path.join(out, "answers.json");
	if (!fs.existsSync(f))
		return null;
	const list = JSON.parse(fs.readFileSync(f));
	return used < list.length ? list[used++] : null;
}

const server = http.createServer((req, res) => {
	const chunks = [];
	req.on("data", (c) => chunks.push(c));
	req.on("end", () => {
		const k = ++n;
		const rec = { n: k, path: req.url, headers: req.headers };
		const types = T[req.url];
		let body = Buffer.concat(chunks);
		try {
			if (req.headers["content-encoding"] === "gzip")
				body = zlib.gunzipSync(body);
			fs.writeFileSync(path.join(out, `${k}.pb`), body);
			if (!types)
				throw new Error("no such path");
			rec.request = types[0].toObject(types[0].decode(body),
				{ longs: String, enums: Number, bytes: String, defaults: false });
		} catch (e) {
			rec.error = String(e.message || e);
		}
		const a = nextAnswer() || { status: rec.error ? 400 : 200 };
		rec.status = a.status;
		const hdrs = { "Content-Type": "application/x-protobuf" };
		if (a.retry_after !== undefined)
			hdrs["Retry-After"] = String(a.retry_after);
		let reply = Buffer.alloc(0);
		if (a.status === 200 && types) {
			const o = a.rejected ? { partialSuccess: { [types[2]]: a.rejected,
							  errorMessage: a.message || "" } } : {};
			reply = Buffer.from(types[1].encode(types[1].fromObject(o)).finish());
		} else if (a.status !== 200) {
			reply = Buffer.from(a.message || "refused by the test receiver");
			hdrs["Content-Type"] = "text/plain";
		}
		fs.appendFileSync(path.join(out, "requests.ndjson"), JSON.stringify(rec) + "\n");
		if (a.drop) { // a connection dropped without an answer
			req.socket.destroy();
			return;
		}
		res.writeHead(a.status, hdrs);
		res.end(reply);
	});
});
server.listen(listenPort, "127.0.0.1", () => console.log("port " + server.address().port));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
