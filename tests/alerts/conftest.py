"""Fixtures of the alert tests: the real ZTF sample packets, as Parquet (as distributed by Fink) and as Avro.

The Avro files are made here, not committed: the real packets of the sample
Parquet file written with fastavro under an Avro schema derived from the
packets' own (Arrow) schema, which follows the ZTF alert schema
(``ztf.alert``: ``objectId, candid, candidate{...}, prv_candidates[...],
cutoutScience{fileName, stampData}``...), nullable fields as ``["null", T]``
unions as in ZTF's schema files.
"""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from astrokit.datasets import get_path

_PRIMITIVES = {pa.float64(): "double", pa.float32(): "float", pa.int64(): "long", pa.int32(): "int",
               pa.string(): "string", pa.binary(): "bytes", pa.bool_(): "boolean"}


def _avro_type(arrow_type, name):
    """Avro type of an Arrow type; records get names under the ``ztf.alert`` namespace, like ZTF's schema."""
    if pa.types.is_struct(arrow_type):
        return {"type": "record", "name": name, "namespace": "ztf.alert",
                "fields": [_avro_field(f, f"{name}_{f.name}") for f in arrow_type]}
    if pa.types.is_list(arrow_type):
        return {"type": "array", "items": _avro_type(arrow_type.value_type, name)}
    if pa.types.is_timestamp(arrow_type):
        return {"type": "long", "logicalType": "timestamp-micros"}
    return _PRIMITIVES[arrow_type]


def _avro_field(field, name):
    t = _avro_type(field.type, name)
    if field.nullable:
        return {"name": field.name, "type": ["null", t], "default": None}
    return {"name": field.name, "type": t}


def avro_schema(arrow_schema):
    """Avro schema (a dict for fastavro) of a table of alert packets, derived from its Arrow schema."""
    return {"type": "record", "name": "alert", "namespace": "ztf",
            "fields": [_avro_field(f, f.name) for f in arrow_schema]}


def write_avro(path, schema, packets):
    """Write packets (dicts) as one Avro container file, under the Avro schema derived from an Arrow schema."""
    import fastavro

    with open(path, "wb") as fh:
        fastavro.writer(fh, fastavro.parse_schema(avro_schema(schema)), packets, codec="deflate")
    return path


@pytest.fixture(scope="session")
def avro_writer():
    """`write_avro(path, arrow_schema, packets)`: write packets as an Avro container."""
    return write_avro


@pytest.fixture(scope="session")
def alerts_parquet():
    """The 51 real ZTF alert packets (Parquet, as Fink distributes them)."""
    return get_path("ztf_alerts")


@pytest.fixture(scope="session")
def alerts_table(alerts_parquet):
    """The real packets as an Arrow table."""
    return pq.read_table(alerts_parquet)


@pytest.fixture(scope="session")
def alerts_avro(tmp_path_factory, alerts_table):
    """The same 51 real packets written as one Avro container."""
    return write_avro(tmp_path_factory.mktemp("avro") / "ztf_alerts.avro", alerts_table.schema,
                      alerts_table.to_pylist())


@pytest.fixture(scope="session")
def alerts_avro_folder(tmp_path_factory, alerts_table):
    """The real packets as a folder of single-packet Avro files, as a Kafka consumer saves ZTF's stream."""
    folder = tmp_path_factory.mktemp("avro_stream")
    for packet in alerts_table.to_pylist():
        write_avro(folder / f"{packet['candid']}.avro", alerts_table.schema, [packet])
    return folder
