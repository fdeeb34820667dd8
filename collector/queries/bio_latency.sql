-- bio_latency: p50, p90, p99 block I/O device time per pod, disk and op (bio_hist).
-- Block I/O device time (issue to completion) per pod, disk and op over
-- the window, from the bio_hist histograms: requests, mean, p50, p90, p99 in µs.
-- A quantile is the upper bound of the log2 bucket that holds it: p99 = 2047 says
-- 99% of the requests took at most 2047 µs (and some of them at least 1024 µs).
-- In the last, open bucket (2^26 µs = 67 s and more) it is that bucket's lower bound.
-- The buckets of every histogram in the window are summed per pod, disk and op
-- first, so the quantiles are those of all the requests together.
-- Window: the last hour; `podsnoop-collector query bio_latency --since 15m` sets it.
-- A pod is namespace/name; I/O charged to no pod shows its cgroup id.
-- (18.16 drops a subquery's column that only a lambda reads: no lambda here reads
-- a column that is not also selected)
SELECT
    pod,
    disk,
    op,
    requests,
    round(sum_ns / requests / 1000, 1) AS mean_us,
    bucket_us[arrayFirstIndex(c -> c >= ceil(requests * 0.5), cum)] AS p50_us,
    bucket_us[arrayFirstIndex(c -> c >= ceil(requests * 0.9), cum)] AS p90_us,
    bucket_us[arrayFirstIndex(c -> c >= ceil(requests * 0.99), cum)] AS p99_us
FROM
(
    SELECT
        pod,
        disk,
        op,
        sum_ns,
        arrayMap((lo, open) -> if(lo = open, lo, toUInt64(if(lo = 0, 1, lo * 2 - 1))),
                 h.1, arrayResize(emptyArrayUInt64(), length(h.1), open_lo)) AS bucket_us,
        arrayCumSum(h.2) AS cum,
        arraySum(h.2) AS requests
    FROM
    (
        SELECT
            if(k8s_pod = '', concat('cgroup ', toString(cgroup_id)),
               concat(k8s_namespace, '/', k8s_pod)) AS pod,
            disk,
            op,
            sumMap(buckets_lo, buckets_count) AS h,
            -- the open bucket's lower bound (hi null), 0 when none has requests
            max(arrayReduce('max', arrayMap((lo, hi) -> if(isNull(hi), lo, toUInt64(0)),
                                            buckets_lo, buckets_hi))) AS open_lo,
            sum(sum_ns) AS sum_ns
        FROM bio_hist FINAL
        WHERE ts >= /*since*/(now() - 3600) AND ts <= /*until*/(now())
        GROUP BY pod, disk, op
    )
)
WHERE requests > 0
ORDER BY p99_us DESC, requests DESC, pod, disk, op
