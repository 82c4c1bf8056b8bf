"""How a msgspec Struct appears in the OpenAPI contract: what msgspec enforces
when it decodes a body, the contract says, so that clients and fuzzers know
which requests are refused.

Litestar's own Struct plugin leaves three rules out:
- `forbid_unknown_fields`: an extra property is refused, at every depth
  (`additionalProperties: false` on the Struct's schema);
- a bound of zero (`ge=0`, `le=0`, `min_length=0`...): Litestar copies a bound
  only when it is truthy, so `minimum: 0` was lost;
- a mapping keyed by a Literal or an Enum (`dict[Kind, bool]`): only those keys
  decode, so the schema names them as its properties and closes the object."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

import msgspec
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.spec import Schema

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.typing import FieldDefinition

# msgspec constraint -> JSON Schema keyword (Litestar's attribute name).
_BOUNDS = {
    "ge": "minimum",
    "le": "maximum",
    "gt": "exclusive_minimum",
    "lt": "exclusive_maximum",
}
_LENGTHS = {"min_length": "min_length", "max_length": "max_length"}
_ITEMS = {"min_length": "min_items", "max_length": "max_items"}


def _constrained(field_type: msgspec.inspect.Type) -> msgspec.inspect.Type:
    """The constraint-bearing type of a field: `X | None` and `Annotated` unwrapped."""
    if isinstance(field_type, msgspec.inspect.UnionType):
        arms = [t for t in field_type.types if not isinstance(t, msgspec.inspect.NoneType)]
        if len(arms) == 1:
            field_type = arms[0]
    if isinstance(field_type, msgspec.inspect.Metadata):
        field_type = field_type.type
    return field_type


def _zero_bounds(field_type: msgspec.inspect.Type) -> dict[str, Any]:
    if isinstance(field_type, msgspec.inspect.IntType | msgspec.inspect.FloatType):
        names = _BOUNDS
    elif isinstance(field_type, msgspec.inspect.StrType):
        names = _LENGTHS
    elif isinstance(field_type, msgspec.inspect.ListType | msgspec.inspect.VarTupleType):
        names = _ITEMS
    else:
        return {}
    return {key: 0 for name, key in names.items() if getattr(field_type, name, None) == 0}


def _literal_keys(field_type: msgspec.inspect.Type) -> list[Any] | None:
    if not isinstance(field_type, msgspec.inspect.DictType):
        return None
    key = field_type.key_type
    if isinstance(key, msgspec.inspect.LiteralType):
        return list(key.values)
    if isinstance(key, msgspec.inspect.EnumType) and issubclass(key.cls, enum.Enum):
        return [member.value for member in key.cls]
    return None


class ContractStructSchemaPlugin(StructSchemaPlugin):
    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        info = msgspec.inspect.type_info(field_definition.type_)
        if not isinstance(info, msgspec.inspect.StructType):
            return schema
        if info.forbid_unknown_fields:
            schema.additional_properties = False
        for field in info.fields:
            prop = (schema.properties or {}).get(field.encode_name)
            if not isinstance(prop, Schema):
                continue
            field_type = _constrained(field.type)
            for key, value in _zero_bounds(field_type).items():
                if getattr(prop, key) is None:
                    setattr(prop, key, value)
            keys = _literal_keys(field_type)
            if keys is not None and prop.type is not None:
                values = prop.additional_properties
                value_schema = values if isinstance(values, Schema) else Schema()
                prop.properties = {str(key): value_schema for key in keys}
                prop.additional_properties = False
        return schema
