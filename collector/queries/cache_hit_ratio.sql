-- cache_hit_ratio: page-cache hit ratio per pod (cache).
-- Page-cache accesses, hits, misses and the hit ratio per pod over the window, from
-- the cache records: hit_pct = 100 * hits_known / (hits_known + misses_known), over
-- the intervals whose accesses are known (a kernel without their source reports
-- misses only: those count in misses_all, not in the ratio); any_estimated: some
-- intervals' accesses are the tracepoint estimate (docs/hooks.md).
-- Window: the last hour; `podsnoop-collector query cache_hit_ratio --since 6h` sets it.
-- A pod is namespace/name; a cgroup in no pod shows its id.
SELECT
    pod,
    count() AS intervals,
    sum(hits) AS hits_known,
    sumIf(misses, isNotNull(hits)) AS misses_known,
    if(hits_known + misses_known = 0, NULL,
       round(100 * hits_known / (hits_known + misses_known), 2)) AS hit_pct,
    sum(misses) AS misses_all,
    sum(dirtied) AS dirtied_pages,
    max(estimated) AS any_estimated
FROM
(
    SELECT
        if(k8s_pod = '', concat('cgroup ', toString(cgroup_id)),
           concat(k8s_namespace, '/', k8s_pod)) AS pod,
        hits, misses, dirtied, estimated
    FROM cache FINAL
    WHERE ts >= /*since*/(now() - 3600) AND ts <= /*until*/(now())
)
GROUP BY pod
ORDER BY hit_pct, pod
