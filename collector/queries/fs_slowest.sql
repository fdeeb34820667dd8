-- fs_slowest: the five slowest filesystem operations of each pod (fs).
-- The slowest filesystem operations of each pod over the window, five a
-- pod, slowest first (the fs records: reads, writes, opens and fsyncs that took at
-- least the agent's --fs-min-us).
-- Window: the last hour; `podsnoop-collector query fs_slowest --since 10m` sets it.
-- A pod is namespace/name; a task in no pod shows its cgroup id.
SELECT
    pod,
    op,
    round(latency_ns / 1000000, 3) AS latency_ms,
    bytes,
    comm,
    if(path = '', file, path) AS file,
    toString(ts) AS time
FROM
(
    SELECT
        if(k8s_pod = '', concat('cgroup ', toString(cgroup_id)),
           concat(k8s_namespace, '/', k8s_pod)) AS pod,
        op, latency_ns, bytes, comm, path, file, ts
    FROM fs FINAL
    WHERE ts >= /*since*/(now() - 3600) AND ts <= /*until*/(now())
)
ORDER BY pod, latency_ns DESC, time
LIMIT 5 BY pod
