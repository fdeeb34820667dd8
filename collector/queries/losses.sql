-- losses: records lost per node, tracer, stage and reason (loss).
-- Records lost per node, tracer, stage and reason over the window (the loss
-- counters the agents send with each batch, plus what the collector refused):
-- lost in the window, the batches that reported some, the last time one did.
-- Window: the last hour; `podsnoop-collector query losses --since 1d` sets it.
SELECT
    node,
    tracer,
    stage,
    reason,
    sum(count) AS lost,
    uniqExact(agent_id, seq) AS batches,
    toString(max(ts)) AS last
FROM loss FINAL
WHERE ts >= /*since*/(now() - 3600) AND ts <= /*until*/(now())
GROUP BY node, tracer, stage, reason
HAVING lost > 0
ORDER BY lost DESC, node, tracer, stage, reason
