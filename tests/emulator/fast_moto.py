"""Faster stand-ins for two moto methods that made a benchmark measure moto rather than capstan.

- DynamoDB TransactWriteItems: moto deep-copies the whole table once per action of the transaction,
  to roll back if it is cancelled; here only the items the transaction touches are copied.
- CloudWatch GetMetricData: moto compares every datapoint with every query in every period; here
  each MetricStat query is answered from its own metric's datapoints alone, a chunk of
  `PERIODS_PER_CHUNK` periods at a time (14 days of one-minute datapoints: 20,160 periods).

Both run moto's own code for everything else and answer as moto does. `install()` puts them in
place of moto's methods (bridge.make_app calls it). Importing this module fails if moto's methods
are not the ones these were written against (moto 5.2.5): review the stand-ins against the new
source before changing the digests below.
"""

import copy
import hashlib
import inspect
from collections import Counter, defaultdict
from datetime import timedelta
from importlib.metadata import version
from types import MappingProxyType

from moto.cloudwatch.metric_data_expression_parser import parse_expression
from moto.cloudwatch.models import CloudWatchBackend
from moto.dynamodb.exceptions import TransactWriteSingleOpException
from moto.dynamodb.models import DynamoDBBackend


def checked(method, digest):
    """`method`, provided its source is the one the stand-in for it was written against."""
    if hashlib.sha256(inspect.getsource(method).encode()).hexdigest() != digest:
        raise RuntimeError(
            f"moto {version('moto')} changed {method.__qualname__}: fast_moto.py was written "
            "against moto 5.2.5's; review its stand-in against the new source"
        )
    return method


MOTO_TRANSACT_WRITE_ITEMS = checked(
    DynamoDBBackend.transact_write_items,
    "81db2cb7d94e39c90b3a2077e1f4bb41a449c558ef9b1b1e2910fdaa39978ad4",
)
MOTO_GET_METRIC_DATA = checked(
    CloudWatchBackend.get_metric_data,
    "ea8fffafcc06a35f9155563657ad693fee66cb40f9a39f54078a09f0777be01c",
)


class WithoutTableBackup:
    """The DynamoDB backend as moto's transact_write_items sees it here: with no tables for its
    backup to copy (nor to put back), and otherwise the backend itself."""

    tables = MappingProxyType({})

    def __init__(self, backend):
        self.backend = backend

    def __getattr__(self, name):
        return getattr(self.backend, name)


def touched(backend, op_type, action):
    """(table, hash key, range key, copy of the item there) for the item `action` acts on, or
    None if moto refuses the action before writing (no such table, no key)."""
    try:
        table = backend.get_table(action["TableName"])
        key = action["Item"] if op_type == "Put" else action["Key"]
        hash_key, range_key = backend.get_keys_value(table, key)
    except Exception:  # moto refuses the action the same way, and reports why
        return None
    return table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))


def put_back(table, hash_key, range_key, item):
    """Put `item` back in `table` at its key (None: no item there)."""
    if range_key is None:
        place, at = table.items, hash_key
    else:
        place, at = table.items[hash_key], range_key
    if item is None:
        place.pop(at, None)
    else:
        place[at] = item


def transact_write_items(self, transact_items):
    """moto's transact_write_items, backing up the items the transaction touches, not tables.

    moto's own code runs, with its whole-table backup disabled (WithoutTableBackup); if it raises,
    the touched items, and the records of their tables' streams, are put back as they were.
    Differences from moto: a backup costs the touched items, not tables x actions; and a table
    named by ARN is rolled back too (moto keys its backup by table name). As in moto, an action
    with two operations (TransactWriteSingleOpException) rolls nothing back.
    """
    backup = [
        found
        for item in transact_items
        for op_type, action in item.items()
        if (found := touched(self, op_type, action)) is not None
    ]
    streams = {
        table.stream_shard: list(table.stream_shard.items)
        for table, *_ in backup
        if table.stream_shard is not None
    }
    try:
        MOTO_TRANSACT_WRITE_ITEMS(WithoutTableBackup(self), transact_items)
    except TransactWriteSingleOpException:
        raise
    except Exception:
        for found in backup:
            put_back(*found)
        for shard, records in streams.items():
            shard.items = records
        raise


class Datapoints:
    """The CloudWatch backend as moto's get_metric_data sees it here: holding `datapoints` only."""

    def __init__(self, datapoints):
        self.datapoints = datapoints

    def get_all_metrics(self):
        return self.datapoints


def dimensions_key(pairs):
    """The (name, value) pairs in any order: dimensions moto compares equal have equal keys. None
    if a value is missing, which moto takes as matching any value."""
    pairs = list(pairs)
    if any(value is None for _, value in pairs):
        return None
    return frozenset(Counter(pairs).items())


PERIODS_PER_CHUNK = 60
"""How many periods of a MetricStat query moto's code answers at once: its cost is the periods
times the datapoints of each call, so 14 days of one-minute data take 336 small calls, not one
of 20,160 x 20,160 comparisons."""


def answer_stat_query(query, datapoints, start_time, end_time, scan_by):
    """moto's answer to one MetricStat query over `datapoints` (its own metric's), asked of moto
    one chunk of `PERIODS_PER_CHUNK` periods at a time and joined. Periods start at `start_time`,
    as moto's do, so chunks split no period; chunks without datapoints give moto no value either
    and are not asked."""
    start_time = start_time.replace(microsecond=0)
    end_time = end_time.replace(microsecond=0)
    span = timedelta(seconds=int(query["MetricStat"]["Period"])) * PERIODS_PER_CHUNK
    # Each chunk's datapoints in moto's own order, which its sums follow.
    by_chunk = defaultdict(list)
    for datum in datapoints:
        if start_time <= datum.timestamp < end_time:
            by_chunk[(datum.timestamp - start_time) // span].append(datum)
    chunks = []
    for index in sorted(by_chunk):
        chunk_start = start_time + span * index
        chunk_end = min(chunk_start + span, end_time)
        chunks += MOTO_GET_METRIC_DATA(
            Datapoints(by_chunk[index]), [query], chunk_start, chunk_end, scan_by
        )
    if not chunks:
        return MOTO_GET_METRIC_DATA(Datapoints([]), [query], start_time, end_time, scan_by)
    if scan_by == "TimestampDescending":
        chunks.reverse()
    joined = dict(chunks[0])
    joined["values"] = [value for chunk in chunks for value in chunk["values"]]
    joined["timestamps"] = [time for chunk in chunks for time in chunk["timestamps"]]
    return [joined]


def get_metric_data(self, queries, start_time, end_time, scan_by="TimestampAscending"):
    """moto's get_metric_data, each MetricStat query looking only at its own metric's datapoints.

    The datapoints are indexed once per call by what moto matches a query on: namespace and name,
    or, for a query with dimensions, name and dimensions (moto then ignores the namespace). moto's
    own code answers each MetricStat query from its datapoints alone, and the Metrics Insights
    queries from all of them; metric math (in moto, an expression naming another query's Id) is
    moto's loop, repeated here, over the MetricStat results. With a dimension value missing (a
    wildcard to moto) moto answers the whole call.
    """
    MOTO_GET_METRIC_DATA(Datapoints([]), [], start_time, end_time, scan_by)  # moto's time checks
    everything = Datapoints(self.get_all_metrics())
    by_namespace, by_dimensions = defaultdict(list), defaultdict(list)
    for datum in everything.datapoints:
        dimensions = dimensions_key((d.name, d.value) for d in datum.dimensions)
        if dimensions is None:
            return MOTO_GET_METRIC_DATA(everything, queries, start_time, end_time, scan_by)
        by_namespace[datum.namespace, datum.name].append(datum)
        by_dimensions[datum.name, dimensions].append(datum)

    stat_queries = [query for query in queries if "MetricStat" in query]
    results = []
    for query in stat_queries:
        metric = query["MetricStat"].get("Metric", {})
        pairs = [(d.get("Name"), d.get("Value")) for d in metric.get("Dimensions", [])]
        if pairs:
            dimensions = dimensions_key(pairs)
            if dimensions is None:
                return MOTO_GET_METRIC_DATA(everything, queries, start_time, end_time, scan_by)
            share = by_dimensions.get((metric.get("MetricName"), dimensions), [])
        else:
            share = by_namespace.get((metric.get("Namespace"), metric.get("MetricName")), [])
        alone = {key: value for key, value in query.items() if key != "Expression"}
        results += answer_stat_query(
            {**alone, "ReturnData": True}, share, start_time, end_time, scan_by
        )

    returned = [
        result
        for query, result in zip(stat_queries, results)
        if query.get("ReturnData", True)
    ]
    for query in queries:
        if "Expression" in query and not query["Expression"].startswith("SELECT"):
            values, timestamps = parse_expression(query["Expression"], results)
            returned.append(
                {
                    "id": query["Id"],
                    "label": query.get("Label") or query["Id"],
                    "values": values,
                    "timestamps": timestamps,
                    "status_code": "Complete",
                }
            )
    insights = [
        {key: value for key, value in query.items() if key != "MetricStat"}
        for query in queries
        if "Expression" in query and query["Expression"].startswith("SELECT")
    ]
    return returned + MOTO_GET_METRIC_DATA(everything, insights, start_time, end_time, scan_by)


def install():
    """Put the stand-ins in place of moto's methods (again: no change)."""
    DynamoDBBackend.transact_write_items = transact_write_items
    CloudWatchBackend.get_metric_data = get_metric_data
