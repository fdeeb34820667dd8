"""podsnoop_bio_latency_seconds against bio_hist records: both as
{bucket upper bound in seconds (float, inf for +Inf): cumulative count}, so
/metrics text, Prometheus' query API and the agent's records compare as they
are."""

SLOTS = 27          # BIO_HIST_SLOTS: log2 buckets of microseconds, the last open-ended


def from_records(hists):
    """Cumulative buckets summed from bio_hist records (their non-empty
    buckets: lo, hi, count), as the agent's exposition bounds them:
    slot i holds whole microseconds up to 2^(i+1) - 1."""
    slots = [0] * SLOTS
    for h in hists:
        assert h["unit"] == "usecs"
        for b in h["buckets"]:
            slots[max(b["lo"].bit_length() - 1, 0)] += b["count"]
    out, cum = {}, 0
    for i, n in enumerate(slots):
        cum += n
        out[float("inf") if i == SLOTS - 1 else ((2 << i) - 1) / 1e6] = cum
    return out


def from_text(samples, labels):
    """Cumulative buckets of one series from parsed /metrics text
    ({'name{labels}': value}); labels: 'k="v",...' without le."""
    pre = "podsnoop_bio_latency_seconds_bucket{%s,le=" % labels
    return {float(k[len(pre):].strip('"}')): v for k, v in samples.items() if k.startswith(pre)}


def from_query(results):
    """Cumulative buckets from Prometheus' query API results [(labels, value)]."""
    return {float(l["le"]): v for l, v in results}
