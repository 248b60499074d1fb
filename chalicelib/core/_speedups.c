/* Optional C speed-ups for the ingest hot path (chalicelib.core.speedups loads them; pure Python does the same
 * work when they are not built). Each function here mirrors one Python function line for line and declines
 * (returns None or stops early) whenever the input is not the plain, common case, so that the Python code
 * decides everything unusual. tests/unit/test_speedups.py holds them to their Python twins. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <time.h>

static PyObject *str_gateway_id;
static PyObject *str_entries, *str_current, *str_previous, *str_last_seen, *str_no_change_since, *str_value;
static PyObject *str_is_received, *str_metric_type, *str_unit, *str_name, *str_id, *str_gauge_float;
static PyObject *str_binary, *str_seen_ms, *str_record, *str_state, *str_status, *str_template, *str_key;
static PyObject *str_node_key, *str_source_key, *str_node_name, *str_source_name, *str_metric_type_attr;
static PyObject *str_field_prefix, *str_dirty, *str_stored_seen_ms;
static PyObject *str_timestamp_key, *str_sequence_key, *str_node_id, *str_source_id, *str_field_id;
static PyObject *value_template; /* {"value": None, "isReceived": True, "timestamp": None, "sequence": None} */
static PyObject *str_frombytes;

/* ------------------------------------------------------------------------------------------ slotted classes */

/* Slotted classes whose instances C reads and makes without running __init__: their slots, in the order Python
 * bound them (``bind_slots(_speedups.ENVELOPE, Envelope, (...))``; the kinds are module constants). */
enum { SLOTS_ENVELOPE, SLOTS_FOLDED, SLOTS_ENTITY, SLOTS_EVENT, SLOTS_GROUP, SLOTS_OP, SLOTS_KINDS };
static const char *slot_kind_names[SLOTS_KINDS] = {"ENVELOPE", "FOLDED", "ENTITY", "EVENT", "GROUP", "OP"};
#define MAX_SLOTS 10
static PyTypeObject *slot_types[SLOTS_KINDS];
static PyMemberDef *slot_members[SLOTS_KINDS][MAX_SLOTS];
static int slot_counts[SLOTS_KINDS];

/* bind_slots(kind, type, names): instances of ``type`` get made with these slots set, in this order. */
static PyObject *
bind_slots(PyObject *self, PyObject *args)
{
    int kind;
    PyObject *type, *names;
    if (!PyArg_ParseTuple(args, "iO!O!", &kind, &PyType_Type, &type, &PyTuple_Type, &names))
        return NULL;
    if (kind < 0 || kind >= SLOTS_KINDS || PyTuple_GET_SIZE(names) > MAX_SLOTS) {
        PyErr_SetString(PyExc_ValueError, "unknown slotted class or too many slots");
        return NULL;
    }
    PyMemberDef *members[MAX_SLOTS]; /* the binding changes only when every name is good */
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(names); k++) {
        PyObject *descr = PyDict_GetItemWithError(((PyTypeObject *)type)->tp_dict, PyTuple_GET_ITEM(names, k));
        if (descr == NULL || Py_TYPE(descr) != &PyMemberDescr_Type) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_TypeError, "%R has no slot %R", type, PyTuple_GET_ITEM(names, k));
            return NULL;
        }
        PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
        if (member->type != T_OBJECT_EX || (member->flags & READONLY)) { /* what __slots__ makes: written directly */
            PyErr_Format(PyExc_TypeError, "%R slot %R is not a plain writable slot", type, PyTuple_GET_ITEM(names, k));
            return NULL;
        }
        members[k] = member;
    }
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(names); k++)
        slot_members[kind][k] = members[k];
    Py_INCREF(type);
    Py_XSETREF(slot_types[kind], (PyTypeObject *)type);
    slot_counts[kind] = (int)PyTuple_GET_SIZE(names);
    Py_RETURN_NONE;
}

/* Where slot ``index`` of an instance of bound class ``kind`` lives in the object (bind_slots admits only plain
 * writable object slots, so it can be read and written there directly). */
static inline PyObject **
slot_ref(int kind, PyObject *obj, int index)
{
    return (PyObject **)((char *)obj + slot_members[kind][index]->offset);
}

/* Slot ``index`` of an instance of bound class ``kind`` (borrowed), read directly; any other object (or an unset
 * slot) through getattr with ``name``. */
static PyObject *
slot_or_attr(int kind, int index, PyObject *obj, PyObject *name)
{
    if (Py_TYPE(obj) == slot_types[kind]) {
        PyObject *value = *slot_ref(kind, obj, index);
        if (value != NULL)
            return value;
    }
    PyObject *value = PyObject_GetAttr(obj, name);
    if (value == NULL)
        return NULL;
    Py_DECREF(value); /* the object holds it */
    return value;
}

/* A new instance of a bound class with its slots set to these values (borrowed; NULL stands for None). */
static PyObject *
make_slotted(int kind, PyObject **values)
{
    PyTypeObject *type = slot_types[kind];
    if (type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "slotted class not bound");
        return NULL;
    }
    PyObject *obj = type->tp_alloc(type, 0);
    if (obj == NULL)
        return NULL;
    for (int k = 0; k < slot_counts[kind]; k++) { /* a new object's slots are empty: set, nothing to release */
        PyObject *value = values[k] ? values[k] : Py_None;
        Py_INCREF(value);
        *slot_ref(kind, obj, k) = value;
    }
    return obj;
}

static int
as_ms(PyObject *value, long long *out)
{
    if (!PyLong_CheckExact(value))
        return 0;
    int overflow = 0;
    *out = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow || (*out == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

/* Slot ``k`` of an Envelope (borrowed): gateway_id, provider, timestamp, sequence, message_id, raw, topic. */
static inline PyObject *
member(PyObject *obj, int k)
{
    return *slot_ref(SLOTS_ENVELOPE, obj, k);
}

/* ------------------------------------------------------------------------------------------ publishes */

/* A reader over one publish body (UTF-8). Every function returns 0 when the text is not the plain form; then
 * the whole publish is declined and json.loads reads it (and says what is wrong, if anything is). */
typedef struct {
    const unsigned char *at, *end;
    PyObject *last_gw, *last_provider; /* reused while they repeat (borrowed from the envelopes made) */
} Reader;

static inline void
skip_space(Reader *r)
{
    while (r->at < r->end && (*r->at == ' ' || *r->at == '\t' || *r->at == '\n' || *r->at == '\r'))
        r->at++;
}

static inline int
expect(Reader *r, unsigned char c)
{
    skip_space(r);
    if (r->at < r->end && *r->at == c) {
        r->at++;
        return 1;
    }
    return 0;
}

/* Bytes that end a plain string's span: the quote, a backslash (an escape) and control characters. */
static unsigned char span_stops[256];

/* A string without escapes or control characters: its bytes (between the quotes). */
static int
read_span(Reader *r, const unsigned char **start, Py_ssize_t *length)
{
    if (!expect(r, '"'))
        return 0;
    const unsigned char *p = r->at, *end = r->end;
    while (p < end && !span_stops[*p])
        p++;
    if (p >= end || *p != '"')
        return 0;
    *start = r->at;
    *length = p - r->at;
    r->at = p + 1;
    return 1;
}

/* A non-negative integer without sign, fraction or exponent, up to 18 digits. */
static int
read_count(Reader *r, long long *out)
{
    skip_space(r);
    const unsigned char *p = r->at;
    long long value = 0;
    int digits = 0;
    while (p < r->end && *p >= '0' && *p <= '9') {
        value = value * 10 + (*p - '0');
        p++;
        if (++digits > 18)
            return 0;
    }
    if (digits == 0 || (digits > 1 && *r->at == '0'))
        return 0;
    if (p < r->end && (*p == '.' || *p == 'e' || *p == 'E'))
        return 0;
    r->at = p;
    *out = value;
    return 1;
}

/* One key: its single letter, or 0 for anything else. */
static int
read_key(Reader *r)
{
    const unsigned char *at = r->at;
    if (r->end - at >= 4 && at[0] == '"' && at[2] == '"' && at[3] == ':' && !span_stops[at[1]]) {
        r->at = at + 4; /* "k": as the edge writes it */
        return at[1];
    }
    const unsigned char *start;
    Py_ssize_t length;
    if (!read_span(r, &start, &length) || length != 1 || !expect(r, ':'))
        return 0;
    return *start;
}

/* A str for a span; the one made last time when the bytes are the same (gateway ids and providers repeat). */
static PyObject *
span_text(const unsigned char *start, Py_ssize_t length, PyObject *last)
{
    if (last != NULL && PyUnicode_IS_COMPACT_ASCII(last) && PyUnicode_GET_LENGTH(last) == length
        && memcmp(PyUnicode_DATA(last), start, (size_t)length) == 0) {
        Py_INCREF(last);
        return last;
    }
    Py_ssize_t i = 0;
    while (i < length && start[i] < 0x80)
        i++;
    if (i == length) { /* ASCII, the usual case: no decoder needed */
        PyObject *ascii = PyUnicode_New(length, 127);
        if (ascii != NULL)
            memcpy(PyUnicode_1BYTE_DATA(ascii), start, (size_t)length);
        return ascii;
    }
    PyObject *text = PyUnicode_DecodeUTF8((const char *)start, length, NULL);
    if (text == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
        PyErr_Clear(); /* declined: json.loads reports it */
    return text;
}

/* One envelope object; NULL with no error set: declined. */
static PyObject *
read_envelope(Reader *r, PyObject *good_ids, Py_ssize_t max_raw)
{
    const unsigned char *spans[7] = {0};
    Py_ssize_t lengths[7] = {0};
    long long numbers[2] = {0, 0};
    int seen[7] = {0}, topic_null = 0;
    static const char letters[7] = {'g', 'p', 't', 's', 'i', 'r', 'o'};
    if (!expect(r, '{'))
        return NULL;
    for (int first = 1;; first = 0) {
        if (first && expect(r, '}'))
            return NULL; /* {}: missing keys */
        int key = read_key(r), k = 0;
        while (k < 7 && letters[k] != key)
            k++;
        if (k == 7 || seen[k])
            return NULL;
        seen[k] = 1;
        if (k == 2 || k == 3) {
            if (!read_count(r, &numbers[k - 2]))
                return NULL;
        }
        else if (k == 6) {
            skip_space(r);
            if (r->end - r->at >= 4 && memcmp(r->at, "null", 4) == 0) {
                r->at += 4;
                topic_null = 1;
            }
            else if (!read_span(r, &spans[k], &lengths[k]))
                return NULL;
        }
        else if (!read_span(r, &spans[k], &lengths[k]))
            return NULL;
        if (expect(r, '}'))
            break;
        if (!expect(r, ','))
            return NULL;
    }
    for (int k = 0; k < 6; k++)
        if (!seen[k])
            return NULL;
    if (lengths[0] == 0 || lengths[1] == 0 || lengths[4] == 0 || lengths[5] > max_raw * 4)
        return NULL;
    PyObject *values[7] = {0};
    PyObject *envelope = NULL;
    values[0] = span_text(spans[0], lengths[0], r->last_gw);
    values[1] = values[0] ? span_text(spans[1], lengths[1], r->last_provider) : NULL;
    values[2] = values[1] ? PyLong_FromLongLong(numbers[0]) : NULL;
    values[3] = values[2] ? PyLong_FromLongLong(numbers[1]) : NULL;
    values[4] = values[3] ? span_text(spans[4], lengths[4], NULL) : NULL;
    values[5] = values[4] ? span_text(spans[5], lengths[5], NULL) : NULL;
    if (values[5] != NULL && seen[6] && !topic_null)
        values[6] = span_text(spans[6], lengths[6], NULL);
    if (values[5] == NULL || (seen[6] && !topic_null && values[6] == NULL))
        goto done;
    if (PyUnicode_GET_LENGTH(values[5]) > max_raw)
        goto done;
    int known = values[0] == r->last_gw || PySet_Contains(good_ids, values[0]); /* the last one was checked */
    if (known <= 0)
        goto done;
    envelope = make_slotted(SLOTS_ENVELOPE, values);
    if (envelope == NULL)
        goto done;
    r->last_gw = values[0];
    r->last_provider = values[1];
done:
    for (int k = 0; k < 7; k++)
        Py_XDECREF(values[k]);
    return envelope;
}

/* parse_publish(body, good_gateway_ids, max_raw, version) -> list[Envelope] | None
 * decode_publish for the plain form the edge sends ({"v":1,"e":[{"g":…,"p":…,"t":…,"s":…,"i":…,"r":…}, …]}, no
 * escapes in strings, every envelope good and of a known gateway): the envelopes without making dicts first.
 * None for anything else; then json.loads and the careful path read it. */
static PyObject *
parse_publish(PyObject *self, PyObject *args)
{
    PyObject *body, *good_ids;
    Py_ssize_t max_raw;
    long long version;
    if (!PyArg_ParseTuple(args, "OO!nL", &body, &PySet_Type, &good_ids, &max_raw, &version))
        return NULL;
    if (slot_counts[SLOTS_ENVELOPE] != 7) {
        PyErr_SetString(PyExc_RuntimeError, "parse_publish: Envelope is not bound");
        return NULL;
    }
    const char *data;
    Py_ssize_t size;
    if (PyUnicode_Check(body)) {
        data = PyUnicode_AsUTF8AndSize(body, &size);
        if (data == NULL) {
            PyErr_Clear();
            Py_RETURN_NONE;
        }
    }
    else if (PyBytes_Check(body)) {
        data = PyBytes_AS_STRING(body);
        size = PyBytes_GET_SIZE(body);
    }
    else
        Py_RETURN_NONE;
    Reader r = {(const unsigned char *)data, (const unsigned char *)data + size, NULL, NULL};
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    int seen_v = 0, seen_e = 0;
    if (!expect(&r, '{'))
        goto decline;
    for (;;) {
        int key = read_key(&r);
        if (key == 'v' && !seen_v) {
            long long v;
            if (!read_count(&r, &v) || v != version)
                goto decline;
            seen_v = 1;
        }
        else if (key == 'e' && !seen_e) {
            seen_e = 1;
            if (!expect(&r, '['))
                goto decline;
            if (!expect(&r, ']')) {
                for (;;) {
                    PyObject *envelope = read_envelope(&r, good_ids, max_raw);
                    if (envelope == NULL) {
                        if (PyErr_Occurred())
                            goto error;
                        goto decline;
                    }
                    int appended = PyList_Append(out, envelope);
                    Py_DECREF(envelope);
                    if (appended < 0)
                        goto error;
                    if (expect(&r, ']'))
                        break;
                    if (!expect(&r, ','))
                        goto decline;
                }
            }
        }
        else
            goto decline;
        if (expect(&r, '}'))
            break;
        if (!expect(&r, ','))
            goto decline;
    }
    skip_space(&r);
    if (!seen_e || r.at != r.end)
        goto decline;
    return out;
decline:
    Py_DECREF(out);
    Py_RETURN_NONE;
error:
    Py_DECREF(out);
    return NULL;
}

/* in_order(envelopes) -> bool: whether the list is sorted by (gateway_id, timestamp, sequence) already, as the
 * processor sorts it (then the sort can be skipped: it is stable). False when unsure. */
static PyObject *
in_order(PyObject *self, PyObject *envelopes)
{
    if (!PyList_CheckExact(envelopes) || slot_types[SLOTS_ENVELOPE] == NULL)
        Py_RETURN_FALSE;
    Py_ssize_t n = PyList_GET_SIZE(envelopes);
    PyObject *before = NULL;
    long long before_ts = 0, before_seq = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *envelope = PyList_GET_ITEM(envelopes, i);
        if (Py_TYPE(envelope) != slot_types[SLOTS_ENVELOPE])
            Py_RETURN_FALSE;
        PyObject *gw = member(envelope, 0);
        long long ts, seq;
        if (gw == NULL || !PyUnicode_CheckExact(gw) || !as_ms(member(envelope, 2), &ts)
            || !as_ms(member(envelope, 3), &seq))
            Py_RETURN_FALSE;
        if (before != NULL) {
            PyObject *before_gw = member(before, 0);
            if (before_gw != gw) {
                int cmp = PyUnicode_Compare(before_gw, gw);
                if (cmp == -1 && PyErr_Occurred())
                    return NULL;
                if (cmp > 0)
                    Py_RETURN_FALSE;
                if (cmp < 0)
                    goto next;
            }
            if (before_ts > ts || (before_ts == ts && before_seq > seq))
                Py_RETURN_FALSE;
        }
    next:
        before = envelope;
        before_ts = ts;
        before_seq = seq;
    }
    Py_RETURN_TRUE;
}

/* message_ids(envelopes) -> list[str] | None: [e.message_id for e in envelopes], read from the slot (no attribute
 * lookup per envelope). None unless every item is an Envelope. */
static PyObject *
message_ids(PyObject *self, PyObject *envelopes)
{
    if (!PyList_CheckExact(envelopes) || slot_types[SLOTS_ENVELOPE] == NULL)
        Py_RETURN_NONE;
    Py_ssize_t n = PyList_GET_SIZE(envelopes);
    for (Py_ssize_t i = 0; i < n; i++)
        if (Py_TYPE(PyList_GET_ITEM(envelopes, i)) != slot_types[SLOTS_ENVELOPE])
            Py_RETURN_NONE;
    PyObject *out = PyList_New(n);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *id = member(PyList_GET_ITEM(envelopes, i), 4);
        if (id == NULL) {
            Py_DECREF(out);
            PyErr_SetString(PyExc_AttributeError, "message_id");
            return NULL;
        }
        Py_INCREF(id);
        PyList_SET_ITEM(out, i, id);
    }
    return out;
}

/* distinct_gateways(envelopes) -> set[str]: {e.gateway_id for e in envelopes} (a run of one gateway costs no
 * set lookups: the ids parse_publish makes repeat as one object). None unless every item is an Envelope. */
static PyObject *
distinct_gateways(PyObject *self, PyObject *envelopes)
{
    if (!PyList_CheckExact(envelopes) || slot_types[SLOTS_ENVELOPE] == NULL)
        Py_RETURN_NONE;
    PyObject *out = PySet_New(NULL), *last = NULL;
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(envelopes); i++) {
        PyObject *envelope = PyList_GET_ITEM(envelopes, i);
        if (Py_TYPE(envelope) != slot_types[SLOTS_ENVELOPE]) {
            Py_DECREF(out);
            Py_RETURN_NONE;
        }
        PyObject *gw = member(envelope, 0);
        if (gw == last)
            continue;
        if (gw == NULL || PySet_Add(out, gw) < 0) {
            if (gw == NULL)
                PyErr_SetString(PyExc_AttributeError, "gateway_id");
            Py_DECREF(out);
            return NULL;
        }
        last = gw;
    }
    return out;
}

/* ------------------------------------------------------------------------------------------ routing */

/* MySensorsInterpreter.route_key: for ``node;child;1;ack;type;payload`` the key ``node;child;1;ack;type`` and the
 * payload; 0 for anything else. New references in *head / *payload. */
static int
mysensors_route_key(PyObject *raw, Py_ssize_t max_payload, PyObject **head, PyObject **payload)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(raw);
    int kind = PyUnicode_KIND(raw);
    const void *data = PyUnicode_DATA(raw);
    Py_ssize_t last = -1;
    Py_ssize_t semis[5];
    int count = 0;
    for (Py_ssize_t i = length - 1; i >= 0; i--) {
        if (PyUnicode_READ(kind, data, i) == ';') {
            last = i;
            break;
        }
    }
    if (last < 0)
        return 0;
    for (Py_ssize_t i = 0; i < last; i++) {
        if (PyUnicode_READ(kind, data, i) == ';') {
            if (count == 4)
                return 0;
            semis[count++] = i;
        }
    }
    if (count != 4 || length - last - 1 > max_payload)
        return 0;
    if (kind == PyUnicode_1BYTE_KIND && PyUnicode_IS_ASCII(raw)) { /* ASCII: printable is ' ' to '~' */
        const Py_UCS1 *bytes = data;
        for (Py_ssize_t i = last + 1; i < length; i++)
            if (bytes[i] < 0x20 || bytes[i] == 0x7f)
                return 0;
    }
    else
        for (Py_ssize_t i = last + 1; i < length; i++)
            if (!Py_UNICODE_ISPRINTABLE(PyUnicode_READ(kind, data, i)))
                return 0;
    /* head[second + 1:second + 3] == "1;" where second is the second ';' of the head */
    Py_ssize_t at = semis[1] + 1;
    if (at + 1 >= last || PyUnicode_READ(kind, data, at) != '1' || PyUnicode_READ(kind, data, at + 1) != ';')
        return 0;
    *head = PyUnicode_Substring(raw, 0, last);
    if (*head == NULL)
        return -1;
    *payload = PyUnicode_Substring(raw, last + 1, length);
    if (*payload == NULL) {
        Py_CLEAR(*head);
        return -1;
    }
    return 1;
}

/* _FieldGroup(gateway_id, key, template) for a route (op, key, node_key, source_key), the keys made once with the
 * route: slots entries, gateway_id, key, node_key, source_key, template. */
static PyObject *
new_group(PyObject *group_type, PyObject *gw, PyObject *route)
{
    PyObject *op = PyTuple_GET_ITEM(route, 0), *key = PyTuple_GET_ITEM(route, 1);
    if ((PyObject *)slot_types[SLOTS_GROUP] != group_type)
        return PyObject_CallFunctionObjArgs(group_type, gw, key, op, NULL);
    PyObject *entries = PyList_New(0);
    if (entries == NULL)
        return NULL;
    PyObject *values[6] = {entries, gw, key, PyTuple_GET_ITEM(route, 2), PyTuple_GET_ITEM(route, 3), op};
    PyObject *group = make_slotted(SLOTS_GROUP, values);
    Py_DECREF(entries);
    return group;
}

/* route_known(envelopes, start, provider, tables, groups, group_type, max_payload) -> int
 * _Batch._interpret's routed case: from ``start``, every MySensors set message whose route key the stream's
 * table knows goes onto its field group. Returns the index of the first envelope it did not take (or the
 * length): Python handles that one, then calls again from the next. */
static PyObject *
route_known(PyObject *self, PyObject *args)
{
    PyObject *envelopes, *provider, *tables, *groups, *group_type;
    Py_ssize_t start, max_payload;
    if (!PyArg_ParseTuple(args, "O!nUO!O!On", &PyList_Type, &envelopes, &start, &provider, &PyDict_Type, &tables,
                          &PyDict_Type, &groups, &group_type, &max_payload))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(envelopes);
    PyObject *stream_gw = NULL, *table = NULL; /* borrowed */
    Py_ssize_t i = start;
    for (; i < n; i++) {
        PyObject *envelope = PyList_GET_ITEM(envelopes, i);
        if (Py_TYPE(envelope) != slot_types[SLOTS_ENVELOPE])
            break;
        PyObject *gw = member(envelope, 0), *prov = member(envelope, 1);
        if (prov != provider && PyUnicode_Compare(prov, provider) != 0)
            break;
        if (gw != stream_gw) {
            PyObject *key = PyTuple_Pack(2, gw, provider);
            if (key == NULL)
                return NULL;
            table = PyDict_GetItemWithError(tables, key);
            Py_DECREF(key);
            if (table == NULL) {
                if (PyErr_Occurred())
                    return NULL;
                break;
            }
            if (!PyDict_Check(table))
                break;
            stream_gw = gw;
        }
        PyObject *head = NULL, *payload = NULL;
        int routed = mysensors_route_key(member(envelope, 5), max_payload, &head, &payload);
        if (routed < 0)
            return NULL;
        if (routed == 0)
            break;
        PyObject *route = PyDict_GetItemWithError(table, head);
        Py_DECREF(head);
        if (route == NULL || !PyTuple_CheckExact(route) || PyTuple_GET_SIZE(route) != 4) {
            Py_DECREF(payload);
            if (PyErr_Occurred())
                return NULL;
            break;
        }
        PyObject *field_key = PyTuple_GET_ITEM(route, 1);
        PyObject *group = PyDict_GetItemWithError(groups, field_key); /* borrowed */
        if (group == NULL) {
            if (PyErr_Occurred()) {
                Py_DECREF(payload);
                return NULL;
            }
            group = new_group(group_type, gw, route);
            if (group == NULL || PyDict_SetItem(groups, field_key, group) < 0) {
                Py_XDECREF(group);
                Py_DECREF(payload);
                return NULL;
            }
            Py_DECREF(group); /* the dict holds it */
        }
        PyObject *entries = slot_or_attr(SLOTS_GROUP, 0, group, str_entries);
        if (entries == NULL) {
            Py_DECREF(payload);
            return NULL;
        }
        Py_INCREF(entries);
        PyObject *entry = PyTuple_New(4);
        if (entry == NULL) {
            Py_DECREF(entries);
            Py_DECREF(payload);
            return NULL;
        }
        PyObject *ts = member(envelope, 2), *seq = member(envelope, 3), *mid = member(envelope, 4);
        Py_INCREF(ts);
        Py_INCREF(seq);
        Py_INCREF(mid);
        PyTuple_SET_ITEM(entry, 0, ts);
        PyTuple_SET_ITEM(entry, 1, seq);
        PyTuple_SET_ITEM(entry, 2, payload);
        PyTuple_SET_ITEM(entry, 3, mid);
        int appended = PyList_Append(entries, entry);
        Py_DECREF(entry);
        Py_DECREF(entries);
        if (appended < 0)
            return NULL;
    }
    return PyLong_FromSsize_t(i);
}

/* group_keys(groups) -> (node ids, source ids, field ids) | None: the ids _Batch._prefetch reads for a dict of
 * _FieldGroup (key → group), as three sets. None unless every value is a _FieldGroup. */
static PyObject *
group_keys(PyObject *self, PyObject *groups)
{
    if (!PyDict_CheckExact(groups) || slot_types[SLOTS_GROUP] == NULL)
        Py_RETURN_NONE;
    PyObject *nodes = PySet_New(NULL), *sources = PySet_New(NULL), *fields = PySet_New(NULL);
    PyObject *key, *group, *last_node = NULL, *last_source = NULL;
    Py_ssize_t at = 0;
    if (nodes == NULL || sources == NULL || fields == NULL)
        goto error;
    while (PyDict_Next(groups, &at, &key, &group)) {
        if (Py_TYPE(group) != slot_types[SLOTS_GROUP]) {
            Py_DECREF(nodes);
            Py_DECREF(sources);
            Py_DECREF(fields);
            Py_RETURN_NONE;
        }
        PyObject *node_key = *slot_ref(SLOTS_GROUP, group, 3), *source_key = *slot_ref(SLOTS_GROUP, group, 4);
        if (node_key == NULL || source_key == NULL) {
            PyErr_SetString(PyExc_AttributeError, "a _FieldGroup without its node_key or source_key");
            goto error;
        }
        if ((node_key != last_node && PySet_Add(nodes, node_key) < 0)
            || (source_key != last_source && PySet_Add(sources, source_key) < 0) || PySet_Add(fields, key) < 0)
            goto error;
        last_node = node_key;
        last_source = source_key;
    }
    return Py_BuildValue("(NNN)", nodes, sources, fields);
error:
    Py_XDECREF(nodes);
    Py_XDECREF(sources);
    Py_XDECREF(fields);
    return NULL;
}

/* ------------------------------------------------------------------------------------------ folding */

/* processor._iso / model.iso_from_ms: ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (UTC); NULL with no error set when the
 * time is out of the plain range (the caller declines). */
static PyObject *
iso_from_ms(long long ms)
{
    if (ms < 0 || ms > 253402300799999LL)
        return NULL;
    long long secs = ms / 1000, days = secs / 86400, rest = secs % 86400;
    /* civil_from_days (H. Hinnant): days since 1970-01-01 to year, month, day */
    long long z = days + 719468, era = z / 146097;
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    long long day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
    long long year = yoe + era * 400 + (month <= 2);
    PyObject *text = PyUnicode_New(24, 127);
    if (text == NULL)
        return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(text);
    long long parts[7] = {year, month, day, rest / 3600, rest / 60 % 60, rest % 60, ms % 1000};
    static const int widths[7] = {4, 2, 2, 2, 2, 2, 3};
    static const char after[7] = {'-', '-', 'T', ':', ':', '.', 'Z'};
    int at = 0;
    for (int k = 0; k < 7; k++) {
        long long part = parts[k];
        for (int d = widths[k] - 1; d >= 0; d--) {
            out[at + d] = (Py_UCS1)('0' + part % 10);
            part /= 10;
        }
        at += widths[k];
        out[at++] = (Py_UCS1)after[k];
    }
    return text;
}

/* iso_from_ms(ms) -> str | None: the formatter above, for tests against model.iso_from_ms. */
static PyObject *
iso_from_ms_py(PyObject *self, PyObject *arg)
{
    long long ms = PyLong_AsLongLong(arg);
    if (ms == -1 && PyErr_Occurred())
        return NULL;
    PyObject *text = iso_from_ms(ms);
    if (text == NULL && !PyErr_Occurred())
        Py_RETURN_NONE;
    return text;
}


static int
truthy_text(PyObject *value)
{
    return value != Py_None && (!PyUnicode_Check(value) || PyUnicode_GET_LENGTH(value) > 0);
}

/* Raise ``acc.seen_ms`` to ts. */
static int
see(PyObject *acc, PyObject *ts_obj, long long ts)
{
    PyObject *seen = slot_or_attr(SLOTS_ENTITY, 3, acc, str_seen_ms);
    long long seen_ms;
    if (seen == NULL)
        return -1;
    if (!as_ms(seen, &seen_ms))
        return 0;
    if (ts > seen_ms) {
        if (Py_TYPE(acc) == slot_types[SLOTS_ENTITY]) {
            Py_INCREF(ts_obj);
            Py_XSETREF(*slot_ref(SLOTS_ENTITY, acc, 3), ts_obj);
            return 1;
        }
        if (PyObject_SetAttr(acc, str_seen_ms, ts_obj) < 0)
            return -1;
    }
    return 1;
}

/* The node or source accumulator for a key: the batch's, or a new one over the stored record. For a node, only
 * one that is up (else _Batch._node has a state to change). NULL with no error set: decline. */
static PyObject *
entity(PyObject *accs, PyObject *stored_records, PyObject *key, int must_be_up, int *created)
{
    *created = 0;
    PyObject *acc = PyDict_GetItemWithError(accs, key);
    PyObject *record;
    if (acc != NULL) {
        record = slot_or_attr(SLOTS_ENTITY, 0, acc, str_record);
        if (record == NULL)
            return NULL;
    }
    else {
        if (PyErr_Occurred())
            return NULL;
        record = PyDict_GetItemWithError(stored_records, key);
        if (record == NULL)
            return NULL;
    }
    if (must_be_up) {
        if (!PyDict_CheckExact(record))
            return NULL;
        PyObject *state = PyDict_GetItemWithError(record, str_state);
        if (state == NULL || !PyDict_CheckExact(state))
            return NULL;
        PyObject *status = PyDict_GetItemWithError(state, str_status);
        if (status == NULL || !PyUnicode_CheckExact(status) || PyUnicode_CompareWithASCIIString(status, "up") != 0)
            return NULL;
    }
    if (acc == NULL)
        *created = 1;
    return acc != NULL ? acc : record;
}

/* _Batch._stored_ms's cache hit: the parsed time (borrowed) when ``cache[record["id"]]`` holds the very str the
 * record has under ``field_name`` (or None for none); NULL (error set or not) otherwise. */
static PyObject *
cached_seen_ms(PyObject *cache, PyObject *record, PyObject *field_name)
{
    PyObject *entity_id = PyDict_GetItemWithError(record, str_id);
    PyObject *known = entity_id ? PyDict_GetItemWithError(cache, entity_id) : NULL;
    PyObject *stamp = known ? PyDict_GetItemWithError(record, field_name) : NULL;
    if (known == NULL || PyErr_Occurred() || !PyTuple_CheckExact(known) || PyTuple_GET_SIZE(known) != 2
        || PyTuple_GET_ITEM(known, 0) != (stamp ? stamp : Py_None))
        return NULL;
    return PyTuple_GET_ITEM(known, 1);
}

/* Whether a node or source without a batch accumulator may stay without one: seen at ts within the last-seen
 * resolution of its stored time (the processor's parse cache knows its last-seen text), so that _Batch._touch
 * would not write it. Then ``skipped[key]`` keeps the newest such ts, for an accumulator Python makes later in
 * the batch. 1 skipped, 0 not, -1 error. */
static int
skip_seen(PyObject *record, PyObject *key, PyObject *ts_obj, long long ts, PyObject **ctx, long long resolution)
{
    PyObject *skipped = ctx[12];
    long long stored, before;
    PyObject *cached = cached_seen_ms(ctx[11], record, str_last_seen);
    if (cached == NULL)
        return PyErr_Occurred() ? -1 : 0;
    if (!as_ms(cached, &stored) || ts - stored >= resolution)
        return 0;
    PyObject *noted = PyDict_GetItemWithError(skipped, key);
    if (noted == NULL && PyErr_Occurred())
        return -1;
    if (noted != NULL && as_ms(noted, &before) && before >= ts)
        return 1;
    return PyDict_SetItem(skipped, key, ts_obj) < 0 ? -1 : 1;
}

static PyObject *
new_entity_acc(PyObject *record, PyObject *ts)
{
    /* _EntityAcc(record, created=False) seen at ts: record, created, dirty, seen_ms, down_ms, stored_seen_ms */
    PyObject *minus_one = PyLong_FromLong(-1);
    if (minus_one == NULL)
        return NULL;
    PyObject *values[6] = {record, Py_False, Py_False, ts, minus_one, NULL};
    PyObject *acc = make_slotted(SLOTS_ENTITY, values);
    Py_DECREF(minus_one);
    return acc;
}

/* float(text) for the plain decimal form ``[-]digits[.digits]`` with at most 15 significant digits, by the exact
 * fast path (the mantissa and 10**k are exact doubles, k <= 22, and one division rounds correctly; zeros before
 * the first other digit do not count): the same
 * double as float(). NULL with no error set for anything else (float() reads it). */
static PyObject *
plain_float(PyObject *text)
{
    static const double powers[23] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13,
                                      1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    if (!PyUnicode_IS_COMPACT_ASCII(text))
        return NULL;
    Py_ssize_t length = PyUnicode_GET_LENGTH(text), i = 0;
    const Py_UCS1 *c = PyUnicode_1BYTE_DATA(text);
    int negative = 0, digits = 0, significant = 0, fraction = -1;
    long long mantissa = 0;
    if (i < length && c[i] == '-') {
        negative = 1;
        i++;
    }
    Py_ssize_t first = i;
    for (; i < length; i++) {
        if (c[i] >= '0' && c[i] <= '9') {
            if ((mantissa > 0 || c[i] != '0') && ++significant > 15)
                return NULL;
            mantissa = mantissa * 10 + (c[i] - '0');
            digits++;
            if (fraction >= 0 && ++fraction > 22)
                return NULL;
        }
        else if (c[i] == '.' && fraction < 0 && i > first)
            fraction = 0;
        else
            return NULL;
    }
    if (digits == 0 || fraction == 0) /* "", "-", "1." : float() decides */
        return NULL;
    double value = (double)mantissa;
    if (fraction > 0)
        value /= powers[fraction];
    return PyFloat_FromDouble(negative ? -value : value);
}

/* plain_float(text) -> float | None: the reader above, for tests against float(). */
static PyObject *
plain_float_py(PyObject *self, PyObject *arg)
{
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "plain_float: a str is needed");
        return NULL;
    }
    PyObject *value = plain_float(arg);
    if (value == NULL && !PyErr_Occurred())
        Py_RETURN_NONE;
    return value;
}

static PyObject *
value_dict(PyObject *value, PyObject *stamp, PyObject *seq)
{
    /* a copy of one made once clones its key table; then only values change (no table grows key by key) */
    PyObject *dict = PyDict_Copy(value_template);
    if (dict == NULL)
        return NULL;
    if (PyDict_SetItem(dict, str_value, value) < 0 || PyDict_SetItem(dict, str_timestamp_key, stamp) < 0
        || PyDict_SetItem(dict, str_sequence_key, seq) < 0) {
        Py_DECREF(dict);
        return NULL;
    }
    return dict;
}

/* One field group folded as _Batch._apply_group + _fast_field would: 1 done, 0 declined (nothing changed), -1
 * error. ctx: see fold_groups. */
static int
fold_group(PyObject *group, PyObject **ctx, Py_ssize_t template_limit, long long resolution)
{
    PyObject *nodes = ctx[0], *sources = ctx[1], *stored_nodes = ctx[2], *stored_sources = ctx[3];
    PyObject *stored_fields = ctx[4], *fields = ctx[5], *gateways = ctx[6], *field_keys = ctx[7];
    PyObject *templates = ctx[8], *series = ctx[9], *point_type = ctx[10];
    int result = -1;
    PyObject *values = NULL, *stamps = NULL, *stamp = NULL, *current = NULL, *previous = NULL, *new = NULL;
    PyObject *node_acc = NULL, *source_acc = NULL;

    PyObject *entries = slot_or_attr(SLOTS_GROUP, 0, group, str_entries);
    PyObject *op = slot_or_attr(SLOTS_GROUP, 5, group, str_template);
    PyObject *key = slot_or_attr(SLOTS_GROUP, 2, group, str_key);
    if (entries == NULL || op == NULL || key == NULL)
        return -1;
    PyObject *gw = slot_or_attr(SLOTS_GROUP, 1, group, str_gateway_id);
    PyObject *node_key = slot_or_attr(SLOTS_GROUP, 3, group, str_node_key);
    PyObject *source_key = slot_or_attr(SLOTS_GROUP, 4, group, str_source_key);
    if (gw == NULL || node_key == NULL || source_key == NULL)
        return -1;
    if (!PyList_CheckExact(entries) || PyList_GET_SIZE(entries) == 0)
        return 0;
    Py_ssize_t n = PyList_GET_SIZE(entries);
    PyObject *op_node_name = slot_or_attr(SLOTS_OP, 8, op, str_node_name);
    PyObject *op_source_name = slot_or_attr(SLOTS_OP, 7, op, str_source_name);
    PyObject *op_metric_type = slot_or_attr(SLOTS_OP, 4, op, str_metric_type_attr);
    PyObject *op_unit = slot_or_attr(SLOTS_OP, 5, op, str_unit);
    PyObject *op_name = slot_or_attr(SLOTS_OP, 6, op, str_name);
    if (!op_node_name || !op_source_name || !op_metric_type || !op_unit || !op_name)
        return -1;
    if (truthy_text(op_node_name) || truthy_text(op_source_name))
        return 0; /* names to follow: the general path */

    /* --- every check first: nothing changes until the group is known to be plain */
    PyObject *last = PyList_GET_ITEM(entries, n - 1);
    if (!PyTuple_CheckExact(last) || PyTuple_GET_SIZE(last) != 4)
        return 0;
    PyObject *last_ts_obj = PyTuple_GET_ITEM(last, 0), *last_seq = PyTuple_GET_ITEM(last, 1);
    long long last_ts;
    if (!as_ms(last_ts_obj, &last_ts))
        return 0;
    int node_new, source_new;
    PyObject *node = entity(nodes, stored_nodes, node_key, 1, &node_new);
    if (node == NULL)
        return PyErr_Occurred() ? -1 : 0;
    PyObject *source = entity(sources, stored_sources, source_key, 0, &source_new);
    if (source == NULL)
        return PyErr_Occurred() ? -1 : 0;
    PyObject *gateway = PyDict_GetItemWithError(gateways, gw);
    if (gateway == NULL)
        return PyErr_Occurred() ? -1 : 0;
    PyObject *stored = PyDict_GetItemWithError(stored_fields, key);
    if (stored == NULL || !PyDict_CheckExact(stored))
        return PyErr_Occurred() ? -1 : 0;
    PyObject *known = PyDict_GetItemWithError(field_keys, key);
    if (known == NULL || !PyTuple_CheckExact(known) || PyTuple_GET_SIZE(known) != 3
        || PyTuple_GET_ITEM(known, 0) != stored)
        return PyErr_Occurred() ? -1 : 0;
    int folded = PyDict_Contains(fields, key);
    if (folded != 0)
        return folded;  /* -1 or already folded: decline */
    PyObject *metric_type = PyDict_GetItemWithError(stored, str_metric_type);
    if (metric_type == NULL || !PyUnicode_CheckExact(metric_type))
        return PyErr_Occurred() ? -1 : 0;
    int is_float = PyUnicode_Compare(metric_type, str_gauge_float) == 0;
    int is_binary = !is_float && PyUnicode_Compare(metric_type, str_binary) == 0;
    if (!is_float && !is_binary)
        return 0;
    if (truthy_text(op_metric_type) && PyObject_RichCompareBool(op_metric_type, metric_type, Py_NE) != 0)
        return PyErr_Occurred() ? -1 : 0;
    if (truthy_text(op_unit)) {
        PyObject *unit = PyDict_GetItemWithError(stored, str_unit);
        if (unit == NULL || PyObject_RichCompareBool(op_unit, unit, Py_NE) != 0)
            return PyErr_Occurred() ? -1 : 0;
    }
    if (truthy_text(op_name)) {
        PyObject *name = PyDict_GetItemWithError(stored, str_name);
        if (name == NULL || PyObject_RichCompareBool(op_name, name, Py_NE) != 0)
            return PyErr_Occurred() ? -1 : 0;
    }
    long long known_ts, known_seq, first_ts, first_seq;
    PyObject *first = PyList_GET_ITEM(entries, 0);
    if (!PyTuple_CheckExact(first) || PyTuple_GET_SIZE(first) != 4 || !as_ms(PyTuple_GET_ITEM(known, 1), &known_ts)
        || !as_ms(PyTuple_GET_ITEM(known, 2), &known_seq) || !as_ms(PyTuple_GET_ITEM(first, 0), &first_ts)
        || !as_ms(PyTuple_GET_ITEM(first, 1), &first_seq))
        return 0;
    if (first_ts < known_ts || (first_ts == known_ts && first_seq <= known_seq))
        return 0;
    PyObject *stored_current = PyDict_GetItemWithError(stored, str_current);
    if (stored_current == NULL)
        return PyErr_Occurred() ? -1 : 0;
    PyObject *stored_value = Py_None;
    if (PyDict_CheckExact(stored_current)) {
        if (PyDict_GET_SIZE(stored_current)) {
            stored_value = PyDict_GetItemWithError(stored_current, str_value);
            if (stored_value == NULL) {
                if (PyErr_Occurred())
                    return -1;
                stored_value = Py_None;
            }
        }
    }
    else if (stored_current != Py_None)
        return 0;
    PyObject *field_id = PyDict_GetItemWithError(stored, str_id);
    if (field_id == NULL)
        return PyErr_Occurred() ? -1 : 0;

    values = PyList_New(n);
    stamps = PyList_New(n);
    if (values == NULL || stamps == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *entry = PyList_GET_ITEM(entries, i);
        if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 4 || !PyLong_CheckExact(PyTuple_GET_ITEM(entry, 0)))
            goto decline;
        PyObject *raw = PyTuple_GET_ITEM(entry, 2), *value;
        if (!PyUnicode_CheckExact(raw))
            goto decline;
        if (is_float) {
            value = plain_float(raw);
            if (value == NULL && !PyErr_Occurred())
                value = PyFloat_FromString(raw);
            if (value == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_ValueError) && !PyErr_ExceptionMatches(PyExc_OverflowError))
                    goto done;
                PyErr_Clear();
                goto decline;
            }
            if (!isfinite(PyFloat_AS_DOUBLE(value))) {
                Py_DECREF(value);
                goto decline;
            }
        }
        else {
            if (PyUnicode_GET_LENGTH(raw) != 1)
                goto decline;
            Py_UCS4 c = PyUnicode_READ_CHAR(raw, 0);
            if (c != '0' && c != '1')
                goto decline;
            value = c == '1' ? Py_True : Py_False;
            Py_INCREF(value);
        }
        PyList_SET_ITEM(values, i, value);
        Py_INCREF(PyTuple_GET_ITEM(entry, 0));
        PyList_SET_ITEM(stamps, i, PyTuple_GET_ITEM(entry, 0));
    }
    if (n > 1) { /* distinct sequences, else the general path tells a replay from an update */
        for (Py_ssize_t i = 0; i < n; i++)
            for (Py_ssize_t j = i + 1; j < n; j++) {
                int equal = PyObject_RichCompareBool(PyTuple_GET_ITEM(PyList_GET_ITEM(entries, i), 1),
                                                     PyTuple_GET_ITEM(PyList_GET_ITEM(entries, j), 1), Py_EQ);
                if (equal < 0)
                    goto done;
                if (equal)
                    goto decline;
            }
    }
    stamp = iso_from_ms(last_ts);
    if (stamp == NULL)
        goto maybe_decline;
    PyObject *ncs_stamp = NULL; /* borrowed from stamp or owned below */
    int ncs_owned = 0;
    for (Py_ssize_t i = n - 1; i >= 0; i--) {
        PyObject *before = i ? PyList_GET_ITEM(values, i - 1) : stored_value;
        int differs = PyObject_RichCompareBool(PyList_GET_ITEM(values, i), before, Py_NE);
        if (differs < 0)
            goto done;
        if (differs) {
            long long ncs;
            as_ms(PyTuple_GET_ITEM(PyList_GET_ITEM(entries, i), 0), &ncs);
            if (ncs == last_ts)
                ncs_stamp = stamp;
            else {
                ncs_stamp = iso_from_ms(ncs);
                if (ncs_stamp == NULL)
                    goto maybe_decline;
                ncs_owned = 1;
            }
            break;
        }
    }
    PyObject *previous_entry = n > 1 ? PyList_GET_ITEM(entries, n - 2) : NULL;
    PyObject *previous_stamp = NULL;
    if (previous_entry != NULL) {
        long long previous_ts;
        as_ms(PyTuple_GET_ITEM(previous_entry, 0), &previous_ts);
        previous_stamp = iso_from_ms(previous_ts);
        if (previous_stamp == NULL) {
            if (ncs_owned)
                Py_DECREF(ncs_stamp);
            goto maybe_decline;
        }
    }

    /* --- the effects: _node, _source, the gateway's seen time, then the folded field */
    if (node_new) {
        int skip = skip_seen(node, node_key, last_ts_obj, last_ts, ctx, resolution);
        if (skip < 0)
            goto effects_failed;
        if (!skip) {
            node_acc = new_entity_acc(node, last_ts_obj);
            if (node_acc == NULL || PyDict_SetItem(nodes, node_key, node_acc) < 0)
                goto effects_failed;
        }
    }
    else if (see(node, last_ts_obj, last_ts) < 0)
        goto effects_failed;
    if (source_new) {
        int skip = skip_seen(source, source_key, last_ts_obj, last_ts, ctx, resolution);
        if (skip < 0)
            goto effects_failed;
        if (!skip) {
            source_acc = new_entity_acc(source, last_ts_obj);
            if (source_acc == NULL || PyDict_SetItem(sources, source_key, source_acc) < 0)
                goto effects_failed;
        }
    }
    else if (see(source, last_ts_obj, last_ts) < 0)
        goto effects_failed;
    if (see(gateway, last_ts_obj, last_ts) < 0)
        goto effects_failed;
    current = value_dict(PyList_GET_ITEM(values, n - 1), stamp, last_seq);
    if (current == NULL)
        goto effects_failed;
    if (previous_entry != NULL) {
        previous = value_dict(PyList_GET_ITEM(values, n - 2), previous_stamp, PyTuple_GET_ITEM(previous_entry, 1));
        if (previous == NULL)
            goto effects_failed;
    }
    else {
        previous = stored_current;
        Py_INCREF(previous);
    }
    new = PyDict_Copy(stored);
    if (new == NULL || PyDict_SetItem(new, str_current, current) < 0 || PyDict_SetItem(new, str_previous, previous) < 0
        || PyDict_SetItem(new, str_last_seen, stamp) < 0
        || (ncs_stamp != NULL && PyDict_SetItem(new, str_no_change_since, ncs_stamp) < 0))
        goto effects_failed;
    {
        PyObject *applied = PyLong_FromSsize_t(n);
        if (applied == NULL)
            goto effects_failed;
        PyObject *slots[4] = {applied, new, last_seq, last_ts_obj}; /* _Folded: applied, new, seq, ts */
        PyObject *folded_acc = make_slotted(SLOTS_FOLDED, slots);
        Py_DECREF(applied);
        if (folded_acc == NULL)
            goto effects_failed;
        int set = PyDict_SetItem(fields, key, folded_acc);
        Py_DECREF(folded_acc);
        if (set < 0)
            goto effects_failed;
    }
    {
        PyObject *template = PyDict_GetItemWithError(templates, key); /* borrowed */
        int fresh = template == NULL || !PyTuple_Check(template) || PyTuple_GET_SIZE(template) < 6;
        if (template == NULL && PyErr_Occurred())
            goto effects_failed;
        if (!fresh) {
            int differs = PyObject_RichCompareBool(PyTuple_GET_ITEM(template, 5), metric_type, Py_NE);
            if (differs < 0)
                goto effects_failed;
            fresh = differs;
        }
        if (fresh) {
            if (PyDict_GET_SIZE(templates) >= template_limit)
                PyDict_Clear(templates);
            PyObject *node_id = slot_or_attr(SLOTS_OP, 0, op, str_node_id);
            PyObject *source_id = slot_or_attr(SLOTS_OP, 1, op, str_source_id);
            PyObject *field_key = slot_or_attr(SLOTS_OP, 2, op, str_field_id);
            if (!node_id || !source_id || !field_key)
                goto effects_failed;
            PyObject *zero = PyLong_FromLong(0);
            if (zero == NULL)
                goto effects_failed;
            template = PyObject_CallFunctionObjArgs(point_type, field_id, gw, node_id, source_id, field_key,
                                                    metric_type, Py_None, zero, NULL);
            Py_DECREF(zero);
            if (template == NULL)
                goto effects_failed;
            int set = PyDict_SetItem(templates, key, template);
            Py_DECREF(template); /* the dict holds it */
            if (set < 0)
                goto effects_failed;
        }
        PyObject *item = PyTuple_Pack(3, template, stamps, values);
        if (item == NULL)
            goto effects_failed;
        int appended = PyList_Append(series, item);
        Py_DECREF(item);
        if (appended < 0)
            goto effects_failed;
    }
    result = 1;
effects_failed:
    if (ncs_owned)
        Py_DECREF(ncs_stamp);
    Py_XDECREF(previous_stamp);
    goto done;
maybe_decline:
    if (PyErr_Occurred())
        goto done;
decline:
    result = 0;
done:
    Py_XDECREF(node_acc);
    Py_XDECREF(source_acc);
    Py_XDECREF(values);
    Py_XDECREF(stamps);
    Py_XDECREF(stamp);
    Py_XDECREF(current);
    Py_XDECREF(previous);
    Py_XDECREF(new);
    return result;
}

/* fold_groups(groups, start, ctx, template_limit, resolution_ms) -> int
 * _Batch._apply_group for the plain case, group after group from ``start`` (a list of _FieldGroup), until one
 * is not plain: returns its index (or the length); Python applies that one and calls again from the next.
 * ctx = (nodes, sources, stored_nodes, stored_sources, stored_fields, fields, gateways, field_keys, templates,
 *        series, MetricPoint, seen-time parse cache, skipped) */
static PyObject *
fold_groups(PyObject *self, PyObject *args)
{
    PyObject *groups, *ctx;
    Py_ssize_t start, template_limit;
    long long resolution;
    if (!PyArg_ParseTuple(args, "O!nO!nL", &PyList_Type, &groups, &start, &PyTuple_Type, &ctx, &template_limit,
                          &resolution))
        return NULL;
    if (PyTuple_GET_SIZE(ctx) != 13) {
        PyErr_SetString(PyExc_ValueError, "fold_groups: ctx must hold 13 items");
        return NULL;
    }
    PyObject *items[13];
    for (int k = 0; k < 13; k++) {
        items[k] = PyTuple_GET_ITEM(ctx, k);
        if (k != 10 && !(k == 9 ? PyList_CheckExact(items[k]) : PyDict_CheckExact(items[k]))) {
            PyErr_Format(PyExc_TypeError, "fold_groups: ctx item %d has the wrong type", k);
            return NULL;
        }
    }
    Py_ssize_t n = PyList_GET_SIZE(groups), i = start;
    for (; i < n; i++) {
        int done = fold_group(PyList_GET_ITEM(groups, i), items, template_limit, resolution);
        if (done < 0)
            return NULL;
        if (done == 0)
            break;
    }
    return PyLong_FromSsize_t(i);
}

/* ------------------------------------------------------------------------------------------ storing */

/* store_fields(accs, general, created, updated, field_kind) -> (records, events, applied)
 * The field part of _Batch._store: for a field the fast path folded (a _Folded), its record, its ``updated``
 * event and (record, ts, seq) for the order-key cache; any other accumulator goes to ``general(acc, records,
 * events, applied)``, which does the same in Python. In the order of ``accs``. */
static PyObject *
store_fields(PyObject *self, PyObject *args)
{
    PyObject *accs, *general, *created, *updated, *field_kind;
    if (!PyArg_ParseTuple(args, "O!OUUU", &PyList_Type, &accs, &general, &created, &updated, &field_kind))
        return NULL;
    PyTypeObject *folded_type = slot_types[SLOTS_FOLDED];
    if (folded_type == NULL || slot_types[SLOTS_EVENT] == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "store_fields: classes not bound");
        return NULL;
    }
    PyObject *records = PyList_New(0), *events = PyList_New(0), *applied = PyList_New(0);
    if (records == NULL || events == NULL || applied == NULL)
        goto error;
    Py_ssize_t n = PyList_GET_SIZE(accs);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *acc = PyList_GET_ITEM(accs, i);
        if (Py_TYPE(acc) != folded_type) {
            PyObject *done = PyObject_CallFunctionObjArgs(general, acc, records, events, applied, NULL);
            if (done == NULL)
                goto error;
            Py_DECREF(done);
            continue;
        }
        /* _Folded slots: applied, new, seq, ts */
        PyObject *record = *slot_ref(SLOTS_FOLDED, acc, 1), *seq = *slot_ref(SLOTS_FOLDED, acc, 2);
        PyObject *ts = *slot_ref(SLOTS_FOLDED, acc, 3);
        if (record == NULL || seq == NULL || ts == NULL || !PyDict_Check(record)) {
            PyErr_SetString(PyExc_TypeError, "store_fields: a folded field without its record");
            goto error;
        }
        PyObject *field_id = PyDict_GetItemWithError(record, str_id);
        if (field_id == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetObject(PyExc_KeyError, str_id);
            goto error;
        }
        if (PyList_Append(records, record) < 0)
            goto error;
        PyObject *key = PyTuple_Pack(3, record, ts, seq);
        if (key == NULL || PyList_Append(applied, key) < 0) {
            Py_XDECREF(key);
            goto error;
        }
        Py_DECREF(key);
        PyObject *quick_id = PyUnicode_Concat(str_field_prefix, field_id);
        if (quick_id == NULL)
            goto error;
        PyObject *values[5] = {updated, field_kind, field_id, quick_id, record};
        PyObject *event = make_slotted(SLOTS_EVENT, values);
        Py_DECREF(quick_id);
        if (event == NULL || PyList_Append(events, event) < 0) {
            Py_XDECREF(event);
            goto error;
        }
        Py_DECREF(event);
    }
    PyObject *out = PyTuple_Pack(3, records, events, applied);
    Py_DECREF(records);
    Py_DECREF(events);
    Py_DECREF(applied);
    return out;
error:
    Py_XDECREF(records);
    Py_XDECREF(events);
    Py_XDECREF(applied);
    return NULL;
}

/* touched(accs, field_name, resolution_ms, stored_ms, iso, cache, cache_limit) -> list[(acc, record)]
 * _Batch._touch over a list of accumulators: those worth a write, with the record to write. ``stored_ms(record,
 * field_name)`` parses a stored last-seen time (cached in Python). */
static PyObject *
touched(PyObject *self, PyObject *args)
{
    PyObject *accs, *field_name, *stored_ms, *iso, *cache;
    long long resolution;
    Py_ssize_t cache_limit;
    if (!PyArg_ParseTuple(args, "O!ULOOO!n", &PyList_Type, &accs, &field_name, &resolution, &stored_ms, &iso,
                          &PyDict_Type, &cache, &cache_limit))
        return NULL;
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(accs);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *acc = PyList_GET_ITEM(accs, i);
        PyObject *record = slot_or_attr(SLOTS_ENTITY, 0, acc, str_record);
        PyObject *seen_obj = slot_or_attr(SLOTS_ENTITY, 3, acc, str_seen_ms);
        PyObject *dirty_obj = slot_or_attr(SLOTS_ENTITY, 2, acc, str_dirty);
        if (record == NULL || seen_obj == NULL || dirty_obj == NULL)
            goto error;
        int dirty = PyObject_IsTrue(dirty_obj);
        if (dirty < 0)
            goto error;
        PyObject *write = dirty ? record : NULL; /* borrowed, or owned when made below */
        int owned = 0;
        long long seen;
        int truthy = PyObject_IsTrue(seen_obj);
        if (truthy < 0)
            goto error;
        if (truthy) {
            if (!as_ms(seen_obj, &seen)) {
                PyErr_SetString(PyExc_TypeError, "touched: seen_ms must be an int");
                goto error;
            }
            PyObject *stored_obj = slot_or_attr(SLOTS_ENTITY, 5, acc, str_stored_seen_ms);
            if (stored_obj == NULL)
                goto error;
            if (stored_obj == Py_None && PyDict_CheckExact(record)) { /* the processor's parse cache: same text */
                PyObject *cached = cached_seen_ms(cache, record, field_name);
                if (PyErr_Occurred())
                    goto error;
                if (cached != NULL) {
                    stored_obj = cached;
                    if (PyObject_SetAttr(acc, str_stored_seen_ms, stored_obj) < 0)
                        goto error;
                }
            }
            if (stored_obj == Py_None) {
                stored_obj = PyObject_CallFunctionObjArgs(stored_ms, record, field_name, NULL);
                if (stored_obj == NULL)
                    goto error;
                int set = PyObject_SetAttr(acc, str_stored_seen_ms, stored_obj);
                Py_DECREF(stored_obj); /* the slot holds it */
                if (set < 0)
                    goto error;
            }
            long long stored;
            if (!as_ms(stored_obj, &stored)) {
                PyErr_SetString(PyExc_TypeError, "touched: stored_seen_ms must be an int");
                goto error;
            }
            long long advanced = seen - stored;
            if (advanced > 0 && (dirty || advanced >= resolution)) {
                PyObject *stamp = iso_from_ms(seen);
                if (stamp == NULL && !PyErr_Occurred()) /* out of the plain range: Python formats it */
                    stamp = PyObject_CallOneArg(iso, seen_obj);
                if (stamp == NULL)
                    goto error;
                write = PyDict_Copy(record);
                if (write == NULL || PyDict_SetItem(write, field_name, stamp) < 0) {
                    Py_DECREF(stamp);
                    Py_XDECREF(write);
                    goto error;
                }
                Py_DECREF(stamp); /* the record written holds it */
                owned = 1;
                /* what _stored_ms would parse from the record written: remember it, by the text's identity */
                PyObject *entity_id = PyDict_GetItemWithError(write, str_id);
                if (entity_id != NULL) {
                    if (PyDict_GET_SIZE(cache) >= cache_limit)
                        PyDict_Clear(cache);
                    PyObject *known = PyTuple_Pack(2, stamp, seen_obj);
                    if (known == NULL || PyDict_SetItem(cache, entity_id, known) < 0) {
                        Py_XDECREF(known);
                        Py_DECREF(write);
                        goto error;
                    }
                    Py_DECREF(known);
                }
                else if (PyErr_Occurred()) {
                    Py_DECREF(write);
                    goto error;
                }
            }
        }
        if (write != NULL) {
            PyObject *pair = PyTuple_Pack(2, acc, write);
            if (owned)
                Py_DECREF(write);
            if (pair == NULL || PyList_Append(out, pair) < 0) {
                Py_XDECREF(pair);
                goto error;
            }
            Py_DECREF(pair);
        }
    }
    return out;
error:
    Py_DECREF(out);
    return NULL;
}

/* ``array.frombytes`` of a list's items packed as int64s ('q': exact ints) or float64s ('d': floats, bools): what
 * ``array.extend(items)`` does for these, without converting item by item in the array module. */
static int
append_packed(PyObject *held, PyObject *items, char code)
{
    Py_ssize_t n = PyList_GET_SIZE(items);
    PyObject *bytes = PyBytes_FromStringAndSize(NULL, n * 8);
    if (bytes == NULL)
        return -1;
    char *out = PyBytes_AS_STRING(bytes);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        if (code == 'q') {
            long long number = PyLong_AsLongLong(item);
            if (number == -1 && PyErr_Occurred()) {
                Py_DECREF(bytes);
                return -1;
            }
            memcpy(out + i * 8, &number, 8);
        }
        else {
            double number = PyFloat_CheckExact(item) ? PyFloat_AS_DOUBLE(item) : (item == Py_True ? 1.0 : 0.0);
            memcpy(out + i * 8, &number, 8);
        }
    }
    PyObject *done = PyObject_CallMethodOneArg(held, str_frombytes, bytes);
    Py_DECREF(bytes);
    Py_XDECREF(done);
    return done == NULL ? -1 : 0;
}

/* buffer_series(buffer, series, plain_numbers, new_held) -> (held, rest)
 * EmbeddedMetricStore.write_series's plain case: a series of finite floats (metric types in plain_numbers) or of
 * bools (binary) is appended to ``buffer[field_id] = (stamps, values)`` (made by ``new_held()`` when missing);
 * any other series goes to ``rest`` for the Python loop. Returns how many points it held. */
static PyObject *
buffer_series(PyObject *self, PyObject *args)
{
    PyObject *buffer, *series, *plain_numbers, *new_held;
    if (!PyArg_ParseTuple(args, "O!O!OO", &PyDict_Type, &buffer, &PyList_Type, &series, &plain_numbers, &new_held))
        return NULL;
    PyObject *rest = PyList_New(0);
    if (rest == NULL)
        return NULL;
    Py_ssize_t held = 0, n = PyList_GET_SIZE(series);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(series, i);
        int plain = 0;
        PyObject *point = NULL, *stamps = NULL, *values = NULL;
        if (PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) == 3) {
            point = PyTuple_GET_ITEM(item, 0);
            stamps = PyTuple_GET_ITEM(item, 1);
            values = PyTuple_GET_ITEM(item, 2);
            if (PyTuple_Check(point) && PyTuple_GET_SIZE(point) >= 6 && PyList_CheckExact(stamps)
                && PyList_CheckExact(values) && PyList_GET_SIZE(stamps) == PyList_GET_SIZE(values)) {
                PyObject *metric_type = PyTuple_GET_ITEM(point, 5);
                int numbers = PySequence_Contains(plain_numbers, metric_type);
                if (numbers < 0)
                    goto error;
                int binary = !numbers && PyUnicode_Check(metric_type) && PyUnicode_Compare(metric_type, str_binary) == 0;
                if (numbers || binary) {
                    plain = 1;
                    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(values) && plain; k++) {
                        PyObject *value = PyList_GET_ITEM(values, k);
                        plain = numbers ? PyFloat_CheckExact(value) && isfinite(PyFloat_AS_DOUBLE(value))
                                        : PyBool_Check(value);
                    }
                }
            }
        }
        if (!plain) {
            if (PyList_Append(rest, item) < 0)
                goto error;
            continue;
        }
        PyObject *field_id = PyTuple_GET_ITEM(point, 0);
        PyObject *known = PyDict_GetItemWithError(buffer, field_id); /* borrowed */
        if (known == NULL) {
            if (PyErr_Occurred())
                goto error;
            known = PyObject_CallNoArgs(new_held);
            int set = known == NULL ? -1 : PyDict_SetItem(buffer, field_id, known);
            Py_XDECREF(known); /* the dict holds it */
            if (set < 0)
                goto error;
        }
        if (!PyTuple_Check(known) || PyTuple_GET_SIZE(known) != 2) {
            PyErr_SetString(PyExc_TypeError, "buffer_series: a held series is not (stamps, values)");
            goto error;
        }
        /* the int64s and float64s packed here, then one frombytes each (array.extend would convert item by
         * item); a list of values (text came) is extended as a list */
        PyObject *stamps_held = PyTuple_GET_ITEM(known, 0), *values_held = PyTuple_GET_ITEM(known, 1);
        if (append_packed(stamps_held, stamps, 'q') < 0)
            goto error;
        if (PyList_Check(values_held) ? PyList_SetSlice(values_held, PyList_GET_SIZE(values_held),
                                                        PyList_GET_SIZE(values_held), values) < 0
                                      : append_packed(values_held, values, 'd') < 0)
            goto error;
        held += PyList_GET_SIZE(stamps);
    }
    PyObject *out = Py_BuildValue("(nN)", held, rest);
    return out;
error:
    Py_DECREF(rest);
    return NULL;
}

/* pack_chunk(stamps, values) -> (ts, vals) | None
 * EmbeddedMetricStore's chunk packing (_last_wins + _pack_ts + _pack_values) for the plain case: a held series
 * of int64 timestamps strictly ascending (then _last_wins has nothing to do) and float64 values (arrays 'q' and
 * 'd'), as little-endian bytes in bytearrays. None for anything else (Python packs it). */
static PyObject *
pack_chunk(PyObject *self, PyObject *args)
{
    PyObject *stamps, *values, *out = NULL;
    if (!PyArg_ParseTuple(args, "OO", &stamps, &values))
        return NULL;
    const union { uint16_t word; uint8_t first; } probe = {1};
    if (!probe.first || !PyObject_CheckBuffer(stamps) || !PyObject_CheckBuffer(values))
        Py_RETURN_NONE;
    Py_buffer ts_view, vals_view;
    if (PyObject_GetBuffer(stamps, &ts_view, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    if (PyObject_GetBuffer(values, &vals_view, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&ts_view);
        return NULL;
    }
    Py_ssize_t n = ts_view.len / 8;
    int plain = ts_view.itemsize == 8 && vals_view.itemsize == 8 && ts_view.format && vals_view.format
                && strcmp(ts_view.format, "q") == 0 && strcmp(vals_view.format, "d") == 0 && n > 0
                && vals_view.len == ts_view.len;
    const long long *ts = ts_view.buf;
    for (Py_ssize_t i = 1; plain && i < n; i++)
        plain = ts[i] > ts[i - 1];
    if (plain) {
        PyObject *ts_bytes = PyByteArray_FromStringAndSize(ts_view.buf, ts_view.len);
        PyObject *vals_bytes = ts_bytes ? PyByteArray_FromStringAndSize(vals_view.buf, vals_view.len) : NULL;
        out = vals_bytes ? PyTuple_Pack(2, ts_bytes, vals_bytes) : NULL;
        Py_XDECREF(ts_bytes);
        Py_XDECREF(vals_bytes);
    }
    PyBuffer_Release(&ts_view);
    PyBuffer_Release(&vals_view);
    if (!plain)
        Py_RETURN_NONE;
    return out; /* NULL with the error set when memory ran out */
}

/* consecutive_ids(ids) -> (stream, first, last) | None
 * repository_memory._consecutive for ASCII ids: whether a list of message ids is one edge stream's consecutive
 * seqs in order (``<stream>-<seq>``, seq canonical decimal of at most 18 digits). None otherwise. */
static PyObject *
consecutive_ids(PyObject *self, PyObject *ids)
{
    if (!PyList_CheckExact(ids) || PyList_GET_SIZE(ids) == 0)
        Py_RETURN_NONE;
    Py_ssize_t n = PyList_GET_SIZE(ids);
    PyObject *head = PyList_GET_ITEM(ids, 0);
    if (!PyUnicode_CheckExact(head) || !PyUnicode_IS_COMPACT_ASCII(head))
        Py_RETURN_NONE;
    const char *text = (const char *)PyUnicode_1BYTE_DATA(head);
    Py_ssize_t length = PyUnicode_GET_LENGTH(head), dash = length - 1;
    while (dash >= 0 && text[dash] != '-')
        dash--;
    Py_ssize_t digits = length - dash - 1;
    if (dash <= 0 || digits < 1 || digits > 18 || (text[dash + 1] == '0' && digits > 1))
        Py_RETURN_NONE;
    long long first = 0;
    for (Py_ssize_t i = dash + 1; i < length; i++) {
        if (text[i] < '0' || text[i] > '9')
            Py_RETURN_NONE;
        first = first * 10 + (text[i] - '0');
    }
    char decimal[20]; /* the expected seq's digits, counted up in place */
    Py_ssize_t width = digits;
    memcpy(decimal, text + dash + 1, (size_t)digits);
    for (Py_ssize_t k = 1; k < n; k++) {
        PyObject *item = PyList_GET_ITEM(ids, k);
        Py_ssize_t at = width - 1;
        while (at >= 0 && decimal[at] == '9')
            decimal[at--] = '0';
        if (at >= 0)
            decimal[at]++;
        else { /* 999 + 1: one digit more */
            memmove(decimal + 1, decimal, (size_t)width++);
            decimal[0] = '1';
        }
        if (width > 18 || !PyUnicode_CheckExact(item) || !PyUnicode_IS_COMPACT_ASCII(item)
            || PyUnicode_GET_LENGTH(item) != dash + 1 + width)
            Py_RETURN_NONE;
        const char *other = (const char *)PyUnicode_1BYTE_DATA(item);
        if (memcmp(other, text, (size_t)dash + 1) != 0 || memcmp(other + dash + 1, decimal, (size_t)width) != 0)
            Py_RETURN_NONE;
    }
    PyObject *stream = PyUnicode_Substring(head, 0, dash);
    if (stream == NULL)
        return NULL;
    return Py_BuildValue("(NLL)", stream, first, first + n - 1);
}

/* ------------------------------------------------------------------------------------------ memory repository */

/* Whether ``stored`` is at least as new as ``record`` (current timestamp, then sequence), as
 * MemoryRepository.put_many's inline check; -2 when that check would raise (the caller asks Python). */
static int
stale_plain(PyObject *stored, PyObject *record)
{
    if (!PyDict_CheckExact(stored) || !PyDict_CheckExact(record))
        return -2;
    PyObject *old = PyDict_GetItemWithError(stored, str_current), *new = PyDict_GetItemWithError(record, str_current);
    if (old == NULL || new == NULL || !PyDict_CheckExact(old) || !PyDict_CheckExact(new))
        return PyErr_Occurred() ? -1 : -2;
    PyObject *old_ts = PyDict_GetItemWithError(old, str_timestamp_key);
    PyObject *new_ts = PyDict_GetItemWithError(new, str_timestamp_key);
    if (old_ts == NULL || new_ts == NULL || !PyUnicode_CheckExact(old_ts) || !PyUnicode_CheckExact(new_ts))
        return PyErr_Occurred() ? -1 : -2;
    int cmp = PyUnicode_Compare(old_ts, new_ts);
    if (cmp == -1 && PyErr_Occurred())
        return -1;
    if (cmp != 0)
        return cmp > 0;
    PyObject *old_seq = PyDict_GetItemWithError(old, str_sequence_key);
    PyObject *new_seq = PyDict_GetItemWithError(new, str_sequence_key);
    if (old_seq == NULL || new_seq == NULL || !PyLong_CheckExact(old_seq) || !PyLong_CheckExact(new_seq))
        return PyErr_Occurred() ? -1 : -2;
    return PyObject_RichCompareBool(old_seq, new_seq, Py_GE);
}

/* pick(store, ids) -> dict: MemoryRepository.get_many: the records of ``store`` the ids name, in the ids' order. */
static PyObject *
pick(PyObject *self, PyObject *args)
{
    PyObject *store, *ids;
    if (!PyArg_ParseTuple(args, "O!O", &PyDict_Type, &store, &ids))
        return NULL;
    PyObject *iterator = PyObject_GetIter(ids);
    if (iterator == NULL)
        return NULL;
    PyObject *found = PyDict_New(), *entity_id;
    if (found == NULL) {
        Py_DECREF(iterator);
        return NULL;
    }
    while ((entity_id = PyIter_Next(iterator)) != NULL) {
        PyObject *record = PyDict_GetItemWithError(store, entity_id);
        int failed = (record == NULL && PyErr_Occurred()) || (record != NULL && PyDict_SetItem(found, entity_id, record) < 0);
        Py_DECREF(entity_id);
        if (failed)
            break;
    }
    Py_DECREF(iterator);
    if (PyErr_Occurred()) {
        Py_DECREF(found);
        return NULL;
    }
    return found;
}

/* put_newer(store, records, index_child, stale) -> list[str]
 * MemoryRepository.put_many(if_newer=True) under its lock: each record stored unless the stored one is at least
 * as new (its id is returned then); ``index_child(id)`` for a new id (None: no index); ``stale(stored, record)`` is
 * the Python check for records of another shape. */
static PyObject *
put_newer(PyObject *self, PyObject *args)
{
    PyObject *store, *records, *index_child, *stale_py;
    if (!PyArg_ParseTuple(args, "O!O!OO", &PyDict_Type, &store, &PyList_Type, &records, &index_child, &stale_py))
        return NULL;
    PyObject *rejected = PyList_New(0), *entity_id = NULL;
    if (rejected == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(records); i++) {
        PyObject *record = PyList_GET_ITEM(records, i);
        entity_id = PyObject_GetItem(record, str_id);
        if (entity_id == NULL)
            goto error;
        PyObject *stored = PyDict_GetItemWithError(store, entity_id);
        if (stored == NULL) {
            if (PyErr_Occurred())
                goto error_id;
            if (index_child != Py_None) {
                PyObject *done = PyObject_CallOneArg(index_child, entity_id);
                if (done == NULL)
                    goto error_id;
                Py_DECREF(done);
            }
        }
        else {
            int stale = stale_plain(stored, record);
            if (stale == -2) {
                PyObject *answer = PyObject_CallFunctionObjArgs(stale_py, stored, record, NULL);
                stale = answer == NULL ? -1 : PyObject_IsTrue(answer);
                Py_XDECREF(answer);
            }
            if (stale < 0)
                goto error_id;
            if (stale) {
                int appended = PyList_Append(rejected, entity_id);
                Py_CLEAR(entity_id);
                if (appended < 0)
                    goto error;
                continue;
            }
        }
        int set = PyDict_SetItem(store, entity_id, record);
        Py_CLEAR(entity_id);
        if (set < 0)
            goto error;
    }
    return rejected;
error_id:
error:
    Py_XDECREF(entity_id);
    Py_DECREF(rejected);
    return NULL;
}

/* ------------------------------------------------------------------------------------------ module */

static PyMethodDef methods[] = {
    {"parse_publish", parse_publish, METH_VARARGS, "decode_publish for the plain form, or None."},
    {"bind_slots", bind_slots, METH_VARARGS, "Say which slotted classes C makes instances of."},
    {"iso_from_ms", iso_from_ms_py, METH_O, "model.iso_from_ms in C (None out of range)."},
    {"plain_float", plain_float_py, METH_O, "float() of a plain decimal in C (None for other text)."},
    {"store_fields", store_fields, METH_VARARGS, "The field part of _Batch._store."},
    {"touched", touched, METH_VARARGS, "_Batch._touch over a list of accumulators."},
    {"buffer_series", buffer_series, METH_VARARGS, "EmbeddedMetricStore.write_series's plain case."},
    {"pick", pick, METH_VARARGS, "MemoryRepository.get_many in C."},
    {"consecutive_ids", consecutive_ids, METH_O, "Whether message ids are one stream's consecutive seqs."},
    {"pack_chunk", pack_chunk, METH_VARARGS, "The embedded metric store's chunk packing, plain case."},
    {"put_newer", put_newer, METH_VARARGS, "MemoryRepository.put_many(if_newer=True) in C."},
    {"fold_groups", fold_groups, METH_VARARGS, "Fold plain field groups as _Batch._apply_group does."},
    {"in_order", in_order, METH_O, "Whether envelopes are sorted by (gateway, timestamp, sequence) already."},
    {"distinct_gateways", distinct_gateways, METH_O, "The gateway ids of a list of envelopes, as a set."},
    {"message_ids", message_ids, METH_O, "The message ids of a list of envelopes, in order."},
    {"group_keys", group_keys, METH_O, "The node, source and field ids of a batch's field groups."},
    {"route_known", route_known, METH_VARARGS, "Put known MySensors set messages onto their field groups."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", NULL, -1, methods};

#define INTERN(var, text)                                                                                          \
    if ((var = PyUnicode_InternFromString(text)) == NULL)                                                          \
        return NULL;

PyMODINIT_FUNC
PyInit__speedups(void)
{
    INTERN(str_gateway_id, "gateway_id") INTERN(str_entries, "entries") INTERN(str_current, "current")
    INTERN(str_previous, "previous") INTERN(str_last_seen, "lastSeen") INTERN(str_no_change_since, "noChangeSince")
    INTERN(str_value, "value") INTERN(str_is_received, "isReceived") INTERN(str_metric_type, "metricType")
    INTERN(str_unit, "unit") INTERN(str_name, "name") INTERN(str_id, "id") INTERN(str_gauge_float, "gauge_float")
    INTERN(str_binary, "binary") INTERN(str_seen_ms, "seen_ms") INTERN(str_record, "record")
    INTERN(str_state, "state") INTERN(str_status, "status") INTERN(str_template, "template") INTERN(str_key, "key")
    INTERN(str_node_key, "node_key") INTERN(str_source_key, "source_key") INTERN(str_node_name, "node_name")
    INTERN(str_source_name, "source_name") INTERN(str_metric_type_attr, "metric_type")
    INTERN(str_timestamp_key, "timestamp") INTERN(str_sequence_key, "sequence") INTERN(str_node_id, "node_id")
    INTERN(str_field_prefix, "field:") INTERN(str_dirty, "dirty") INTERN(str_stored_seen_ms, "stored_seen_ms")
    INTERN(str_source_id, "source_id") INTERN(str_field_id, "field_id") INTERN(str_frombytes, "frombytes")
    for (int c = 0; c < 0x20; c++)
        span_stops[c] = 1;
    span_stops['"'] = span_stops['\\'] = 1;
    value_template = PyDict_New();
    if (value_template == NULL || PyDict_SetItem(value_template, str_value, Py_None) < 0
        || PyDict_SetItem(value_template, str_is_received, Py_True) < 0
        || PyDict_SetItem(value_template, str_timestamp_key, Py_None) < 0
        || PyDict_SetItem(value_template, str_sequence_key, Py_None) < 0)
        return NULL;
    PyObject *mod = PyModule_Create(&module);
    for (int kind = 0; mod != NULL && kind < SLOTS_KINDS; kind++)
        if (PyModule_AddIntConstant(mod, slot_kind_names[kind], kind) < 0)
            Py_CLEAR(mod);
    return mod;
}
