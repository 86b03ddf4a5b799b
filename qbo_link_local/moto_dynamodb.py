"""moto's DynamoDB made as atomic as DynamoDB, at a cost bulk work can afford.

Used by every test (a session fixture in tests/conftest.py), by the local stack (``LocalStack``
holds it while it runs) and by the push benchmark.  Real DynamoDB evaluates a condition and applies
the write as one step per item (a transaction as one step); moto checks and writes in Python
without a lock, so two threads could both pass the same condition — and the single-flight token
refresh and the rate governor rely on exactly that guarantee.  The patches reach into moto 5's
internals; tests/integration/test_push_moto_harness.py shows when an upgrade breaks them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

_DYNAMODB_OPERATIONS = (
    "put_item",
    "update_item",
    "delete_item",
    "transact_write_items",
    "batch_write_item",
    "get_item",
    "query",
    "batch_get_item",
    "transact_get_items",
    "execute_transaction",
)


def _rollback_by_item(original: Any) -> Any:
    """moto's ``transact_write_items`` with the same all-or-nothing outcome, rolled back item by item.

    moto deep-copies every table a transaction touches before it starts, so that it can put the
    copies back if one action fails: each transaction costs a copy of the whole table, and a bulk
    push into a table of a few thousand items spends most of its time copying.  Under the lock
    below nothing else changes the tables while a transaction runs, so restoring the items the
    transaction names (and the table's stream records) gives back exactly the state it started
    from; moto's own table copy is skipped by handing it the table itself for the duration.
    """
    import copy
    import types

    from moto.dynamodb import models
    from moto.dynamodb.exceptions import MockValidationException
    from moto.dynamodb.models.table import Table

    def copy_unless_table(value: Any, memo: dict[int, Any] | None = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    no_table_copies = types.SimpleNamespace(**{**vars(copy), "deepcopy": copy_unless_table})

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        saved: list[tuple[Any, Any, Any, Any]] = []  # (table, hash, range, item before or None)
        streams: dict[int, tuple[Any, int]] = {}
        for action in transact_items:
            for operation, request in action.items():
                table = self.tables.get(request.get("TableName"))
                if table is None:
                    continue
                source = request["Item"] if operation == "Put" else request.get("Key")
                if not isinstance(source, dict):
                    continue
                try:
                    hash_key, range_key = self.get_keys_value(table, source)
                    before = table.get_item(hash_key, range_key)
                except (MockValidationException, TypeError):
                    continue  # a malformed key: moto refuses the action itself
                saved.append((table, hash_key, range_key, copy.deepcopy(before)))
                if table.stream_shard is not None:
                    streams.setdefault(id(table), (table.stream_shard, len(table.stream_shard.items)))
        models.copy = no_table_copies  # type: ignore[assignment,attr-defined]
        try:
            return original(self, transact_items)
        except BaseException:
            for table, hash_key, range_key, before in reversed(saved):
                _restore(table, hash_key, range_key, before)
            for shard, length in streams.values():
                del shard.items[length:]
            raise
        finally:
            models.copy = copy  # type: ignore[attr-defined]

    return transact_write_items


def _restore(table: Any, hash_key: Any, range_key: Any, before: Any) -> None:
    if range_key is None:
        if before is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = before
        return
    ranges = table.items.get(hash_key)
    if before is not None:
        table.items[hash_key][range_key] = before
    elif ranges is not None:
        ranges.pop(range_key, None)
        if not ranges:
            del table.items[hash_key]


def _parsed_once(make: Any) -> Any:
    """moto's update-expression parser, remembering each expression's tree.

    moto parses an UpdateExpression from scratch on every write (twice for a transaction); the
    posting log writes the same few expression shapes thousands of times in a bulk push.  The tree
    only depends on the expression's text, and every consumer either reads it or deep-copies it
    before changing it (the validator works on its own copy), so one parse per text is the same.
    """
    import functools

    remembered = functools.lru_cache(maxsize=4096)(make)

    def parse(expression: str) -> Any:
        return remembered(expression)

    return parse


def _validated_once(validator: Any) -> tuple[Any, Any]:
    """moto's update-expression validator, running its checks of the expression alone once per
    expression (``__init__`` and ``validate`` to install).

    Of the validator's ten passes over the tree, the first three (at most one SET/ADD/REMOVE
    clause each, no overlapping paths, no key attribute changed) depend only on the expression, its
    attribute names and the table's keys; the others depend on the values and the item.  Once an
    expression (one parsed tree: ``_parsed_once``) passed them with the same names and keys, it
    passes them again: only the item- and value-dependent passes run.
    """
    static_passes = 3
    passed: dict[tuple[int, tuple[tuple[str, str], ...], tuple[str, ...]], Any] = {}
    original_init, original_validate = validator.__init__, validator.validate

    def init(self: Any, expression: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, expression, *args, **kwargs)
        names = tuple(sorted((self.expression_attribute_names or {}).items()))
        key = (id(expression), names, tuple(self.table.table_key_attrs))
        if key in passed:
            self.processors = self.processors[static_passes:]
        else:
            self._static_key = (key, expression)  # the tree is kept alive, so its id stays its own

    def validate(self: Any) -> Any:
        result = original_validate(self)
        static = getattr(self, "_static_key", None)
        if static is not None:
            passed[static[0]] = static[1]
        return result

    return init, validate


def _sorted_natively(table: Any) -> list[Any]:
    """moto's ``Table.all_items`` (the candidates of every Query and Scan, in key order), sorted on
    the keys' plain values instead of through DynamoType's Python comparisons: a table's key
    attributes have one type each, so the order is the same."""
    items: list[Any] = []
    for hash_set in table.items.values():
        if table.range_key_attr:
            items.extend(hash_set.values())
        else:
            items.append(hash_set)
    if table.range_key_attr:
        return sorted(items, key=lambda x: (x.hash_key.cast_value, x.range_key.cast_value))
    return sorted(items, key=lambda x: x.hash_key.cast_value)


_holders: list[object] = []  # who holds the patches now: they are installed once, by the first


@contextmanager
def held(holders: list[object], patched: Callable[[], AbstractContextManager[None]]) -> Iterator[None]:
    """Run the block inside ``patched()`` unless an outer block of the same ``holders`` already
    does: nested and concurrent uses share the one patch the first installed."""
    token = object()
    holders.append(token)
    try:
        if len(holders) > 1:
            yield
        else:
            with patched():
                yield
    finally:
        holders.remove(token)


@contextmanager
def atomic_dynamodb() -> Iterator[None]:
    """Make moto's DynamoDB as atomic as the real one (every test runs inside this; so do the push
    benchmark and the local stack).  Re-entrant: an inner use (a local stack inside the test
    session) shares the patches the outer one installed.

    Real DynamoDB evaluates a condition and applies the write as one step per item (and a
    transaction as one step); moto checks and writes in Python without a lock, so two threads can
    both pass the same condition. The single-flight refresh and the rate governor rely on exactly
    that guarantee, so their concurrency tests would otherwise measure moto, not our code.
    Transactions also roll back item by item instead of from a copy of every table they touch
    (``_rollback_by_item``), each update expression is parsed once (``_parsed_once``) and checked
    on its own once (``_validated_once``), and query candidates are sorted on plain key values
    (``_sorted_natively``): the same outcomes, at a cost a 1,000-invoice push can afford.
    """
    with held(_holders, _patched):
        yield


@contextmanager
def _patched() -> Iterator[None]:
    import functools
    import threading

    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.parsing import expressions

    lock = threading.RLock()
    originals = {name: getattr(DynamoDBBackend, name) for name in _DYNAMODB_OPERATIONS}
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.parsing import validators

    parser: Any = vars(expressions)["UpdateExpressionParser"]  # untyped in moto's stubs
    make = parser.__dict__["make"]
    parser.make = staticmethod(_parsed_once(parser.make))
    checker: Any = vars(validators)["UpdateExpressionValidator"]
    checks = checker.__dict__.get("__init__"), checker.__dict__.get("validate")
    checker.__init__, checker.validate = _validated_once(checker)
    all_items = Table.all_items
    Table.all_items = _sorted_natively  # type: ignore[method-assign,assignment]

    def atomic(method: Any) -> Any:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(*args, **kwargs)

        return wrapper

    for name, method in originals.items():
        if name == "transact_write_items":
            setattr(DynamoDBBackend, name, atomic(functools.wraps(method)(_rollback_by_item(method))))
        else:
            setattr(DynamoDBBackend, name, atomic(method))
    try:
        yield
    finally:
        parser.make = make
        Table.all_items = all_items  # type: ignore[method-assign]
        for name, method in zip(("__init__", "validate"), checks, strict=True):
            if method is None:
                delattr(checker, name)  # it was inherited
            else:
                setattr(checker, name, method)
        for name, method in originals.items():
            setattr(DynamoDBBackend, name, method)
