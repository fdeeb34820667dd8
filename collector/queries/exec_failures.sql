-- exec_failures: the pods with the most failed execs (exec).
-- Over the window: execs, failed, the share failed, the most frequent errors and failing files.
-- Window: the last hour; `podsnoop-collector query exec_failures --since 1d` sets it.
-- A pod is namespace/name; a task in no pod shows its cgroup id.
SELECT
    pod,
    count() AS execs,
    countIf(retval != 0) AS failed,
    round(100 * failed / execs, 1) AS failed_pct,
    arrayStringConcat(arrayMap(e -> toString(e), topKIf(3)(retval, retval != 0)), ' ')
        AS top_errors,
    arrayStringConcat(topKIf(3)(filename, retval != 0), ' ') AS top_files
FROM
(
    SELECT
        if(k8s_pod = '', concat('cgroup ', toString(cgroup_id)),
           concat(k8s_namespace, '/', k8s_pod)) AS pod,
        retval,
        filename
    FROM exec FINAL
    WHERE ts >= /*since*/(now() - 3600) AND ts <= /*until*/(now())
)
GROUP BY pod
HAVING failed > 0
ORDER BY failed DESC, pod
LIMIT 50
