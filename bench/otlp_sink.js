// An OTLP/HTTP logs sink for the throughput benchmark: decodes every request with the
// OpenTelemetry project's own generated code (as tests/otlp/receiver.js does) and only
// counts, so that it keeps up with the agent; answers 200 with an empty response.
//   node otlp_sink.js NODE_MODULES
// Prints "port N" once listening on 127.0.0.1; at SIGTERM or SIGINT one line:
// "otlp sink: R requests, N log records (exec X, loss Y, ...), B bytes, D decompressed,
// E errors", the records counted by their event_name.
"use strict";
const http = require("http");
const path = require("path");
const zlib = require("zlib");
const mods = path.resolve(process.argv[2]);
const root = require(path.join(mods, "@opentelemetry/otlp-transformer/build/src/generated/root.js"));
const Req = root.opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest;
const Resp = root.opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse;
const empty = Buffer.from(Resp.encode(Resp.create()).finish());
const t = { requests: 0, records: 0, bytes: 0, raw: 0, errors: 0 };
const byName = {};

const server = http.createServer((req, res) => {
	const chunks = [];
	req.on("data", (c) => chunks.push(c));
	req.on("end", () => {
		let body = Buffer.concat(chunks);
		t.requests++;
		t.bytes += body.length;
		try {
			if (req.url !== "/v1/logs")
				throw new Error("no such path " + req.url);
			if (req.headers["content-encoding"] === "gzip")
				body = zlib.gunzipSync(body);
			t.raw += body.length;
			for (const rl of Req.decode(body).resourceLogs)
				for (const sl of rl.scopeLogs)
					for (const lr of sl.logRecords) {
						t.records++;
						byName[lr.eventName] = (byName[lr.eventName] || 0) + 1;
					}
		} catch (e) {
			t.errors++;
			res.writeHead(400, { "Content-Type": "text/plain" });
			res.end(String(e.message || e));
			return;
		}
		res.writeHead(200, { "Content-Type": "application/x-protobuf" });
		res.end(empty);
	});
});

function done() {
	const names = Object.keys(byName).sort().map((k) => `${k} ${byName[k]}`).join(", ");
	process.stderr.write(`otlp sink: ${t.requests} requests, ${t.records} log records ` +
		`(${names}), ` +
		`${t.bytes} bytes, ${t.raw} decompressed, ${t.errors} errors\n`);
	process.exit(0);
}
process.on("SIGTERM", done);
process.on("SIGINT", done);
server.listen(0, "127.0.0.1", () => console.log("port " + server.address().port));
