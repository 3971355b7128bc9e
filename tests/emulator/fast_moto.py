"""Faster stand-ins for two moto methods that made a benchmark measure moto rather than capstan.

- DynamoDB TransactWriteItems: moto deep-copies the whole table once per action of the transaction,
  to roll back if it is cancelled; here only the items the transaction touches are copied.
- CloudWatch GetMetricData: moto compares every datapoint with every query in every period; here
  each MetricStat query is answered from its own metric's datapoints alone, a chunk of
  `PERIODS_PER_CHUNK` periods at a time (14 days of one-minute datapoints: 20,160 periods).

One extension, not moto's: moto evaluates no metric math (an `Expression` is answered only when it
is exactly another query's Id). Here an expression of capstan's subset (docs/policy.md,
"Expression metrics": numbers, other queries' Ids, `+ - * /`, parentheses, unary minus, `ABS`,
and `AVG`, `MAX`, `MIN`, `SUM` of an array) is evaluated over the other queries' answers, as
CloudWatch documents it ("Using metric math"): between two series, only timestamps both have;
a number applies at every timestamp; an array function takes the elements present at each
timestamp; a value that is not a finite number is dropped. An expression may name another, and
one whose ReturnData is false is not returned. This is what the end-to-end tests over the emulator
rely on; the request's shape is checked against AWS's API reference with aws-smithy-mocks
(crates/aws/src/cloudwatch.rs).

Both run moto's own code for everything else and answer as moto does. `install()` puts them in
place of moto's methods (bridge.make_app calls it). Importing this module fails if moto's methods
are not the ones these were written against (moto 5.2.5): review the stand-ins against the new
source before changing the digests below.
"""

import ast
import copy
import hashlib
import inspect
import math
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
    queries from all of them; metric math is `evaluate_expressions` over the MetricStat results
    (moto's own answer for an expression that is another query's Id, capstan's subset besides).
    A query whose ReturnData is false is not returned. With a dimension value missing (a wildcard
    to moto) moto answers the whole call.
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
    expressions = [
        query
        for query in queries
        if "Expression" in query and not query["Expression"].startswith("SELECT")
    ]
    for query, (values, timestamps) in evaluate_expressions(expressions, results, scan_by):
        if query.get("ReturnData", True):
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


def evaluate_expressions(expressions, results, scan_by):
    """(query, (values, timestamps)) for each metric math query of `expressions`, over `results`
    (the MetricStat answers) and the other expressions. An expression that is exactly a MetricStat
    query's Id is moto's own parse_expression; others are capstan's subset (`evaluate`), each
    evaluated once the expressions it names are. One outside the subset, or naming an unknown Id
    or, in a cycle, itself, has no values (CloudWatch would refuse the call)."""
    stat_ids = {result["id"] for result in results}
    series = {
        result["id"]: dict(zip(result["timestamps"], result["values"])) for result in results
    }
    answers = {}
    waiting = list(expressions)
    while waiting:
        ready = [query for query in waiting if names(query["Expression"]) <= series.keys()]
        for query in ready:
            text = query["Expression"]
            if text in stat_ids:
                answers[query["Id"]] = parse_expression(text, results)
            else:
                answers[query["Id"]] = ordered(evaluate(text, series), scan_by)
            values, timestamps = answers[query["Id"]]
            series[query["Id"]] = dict(zip(timestamps, values))
        if not ready:
            answers.update({query["Id"]: ([], []) for query in waiting})
        waiting = [query for query in waiting if query["Id"] not in answers]
    return [(query, answers[query["Id"]]) for query in expressions]


def names(text):
    """The Ids an expression names; none if it is not Python-shaped."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return set()
    called = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    return {
        node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id not in called
    }


OPERATORS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b if b != 0 else math.nan,
}

ARRAY_FUNCTIONS = {
    "AVG": lambda values: sum(values) / len(values),
    "MAX": max,
    "MIN": min,
    "SUM": sum,
}


def evaluate(text, series):
    """{timestamp: value} of the expression `text` over `series` ({Id: {timestamp: value}}),
    non-finite values dropped; {} for a number alone or an expression outside the subset."""
    try:
        value = node_value(ast.parse(text, mode="eval").body, series)
    except (SyntaxError, ValueError, KeyError):
        return {}
    if not isinstance(value, dict):
        return {}
    return {time: x for time, x in value.items() if math.isfinite(x)}


def node_value(node, series):
    """A number, or {timestamp: value}, for one node of capstan's subset; ValueError otherwise."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return float(node.value)
    if isinstance(node, ast.Name):
        return series[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return pointwise(lambda a: -a, node_value(node.operand, series))
    if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
        apply = OPERATORS[type(node.op)]
        left, right = node_value(node.left, series), node_value(node.right, series)
        if isinstance(left, dict) and isinstance(right, dict):
            return {time: apply(x, right[time]) for time, x in left.items() if time in right}
        if isinstance(left, dict):
            return pointwise(lambda a: apply(a, right), left)
        return pointwise(lambda b: apply(left, b), right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 1:
        function, (arg,) = node.func.id, node.args
        if function == "ABS" and not isinstance(arg, ast.List):
            return pointwise(abs, node_value(arg, series))
        if function in ARRAY_FUNCTIONS and isinstance(arg, ast.List) and arg.elts:
            return array_function(
                ARRAY_FUNCTIONS[function], [node_value(e, series) for e in arg.elts]
            )
    raise ValueError(f"outside capstan's subset: {ast.dump(node)}")


def pointwise(function, value):
    """`function` of a number, or of each value of a series."""
    if isinstance(value, dict):
        return {time: function(x) for time, x in value.items()}
    return function(value)


def array_function(function, elements):
    """`function` of the elements present at each timestamp any series element has (numbers are
    present at all); of the numbers alone if there is no series."""
    numbers = [e for e in elements if not isinstance(e, dict)]
    serieses = [e for e in elements if isinstance(e, dict)]
    if not serieses:
        return function(numbers)
    times = {time for s in serieses for time in s}
    return {time: function(numbers + [s[time] for s in serieses if time in s]) for time in times}


def ordered(points, scan_by):
    """(values, timestamps) of {timestamp: value}, in `scan_by` order."""
    times = sorted(points, reverse=scan_by == "TimestampDescending")
    return [points[time] for time in times], times


def install():
    """Put the stand-ins in place of moto's methods (again: no change)."""
    DynamoDBBackend.transact_write_items = transact_write_items
    CloudWatchBackend.get_metric_data = get_metric_data
