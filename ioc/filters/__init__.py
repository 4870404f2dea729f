"""EPICS 7 channel filters and field modifiers, with EPICS base 7.0.8's semantics.

The server uses this package in three steps::

    cn = parse_channel_name(name)            # FilterError -> CREATE_CH_FAIL
    # look up cn.record / cn.field; for cn.long_string: dbf, nelm = long_string_field(...)
    chain = build_chain(cn.filters, FieldInfo(dbf, nelm, is_array, read_array, name),
                        now=time_source)     # None: no filters; FilterError -> CREATE_CH_FAIL
    # CREATE_CHAN answers chain.final_dbf / chain.final_count (as CA types) when there is one;
    # on each post: chain.pre(fl) per subscription; on sending: chain.post(fl); on a get:
    # chain.read(fl) (None: send the plain field value).

Modules: ``name`` (the name grammar), ``chain`` (FilterChain, build_chain), one module per
filter (``arr``, ``dbnd``, ``ts``, ``sync``, ``dec``, ``utag``), ``_json5`` (base's yajl JSON5
reader), ``_chf`` (base's chfPlugin option rules).
"""
from ._base import DBE_ALARM, DBE_LOG, DBE_PROPERTY, DBE_VALUE, FieldInfo, Filter, FilterError
from .chain import PLUGINS, FilterChain, build_chain
from .name import ChannelName, long_string_field, parse_channel_name, split_pv_name

__all__ = ["ChannelName", "DBE_ALARM", "DBE_LOG", "DBE_PROPERTY", "DBE_VALUE", "FieldInfo",
           "Filter", "FilterChain", "FilterError", "PLUGINS", "build_chain", "long_string_field",
           "parse_channel_name", "split_pv_name"]
