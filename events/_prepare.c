/* events._prepare: an append batch prepared in one lean pass — the compiled twin of
 * events.batch.prepare_fast_py, with the same outcome for every input: the same PreparedEvents
 * (the very objects where the Python loop passes objects through), None where it gives up, or
 * the same exception.
 *
 * Only the driver loop is compiled: each event's loader, encoder, metadata validation and
 * occurred_at parsing are the Python callables the Python loop calls, called in the same
 * order, so whichever check answers first (None, or an exception) answers here too. Where
 * the Python loop relies on an object's own behaviour (unpacking a FastPlan, indexing the
 * occurred pair, `loaded.get`, `.decode()`), the exact built-in types take a direct path and
 * anything else goes through the generic protocol Python would use. Public, documented C-API
 * calls only; the GIL is held throughout. Built by setup.py as an optional extension;
 * events.batch hands over, once at import, the objects the Python loop finds as globals.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define UUID_LEN 36
#define PREPARED_LEN 11

/* ---- what events.batch hands over at import (configure) ------------------------------------ */

enum {
    NEW_EVENT,        /* envelope.NewEvent */
    PREPARED_EVENT,   /* batch.PreparedEvent, a tuple subclass */
    NEW_EVENT_ID,     /* envelope.new_event_id */
    OCCURRED,         /* batch._occurred */
    OCCURRED_CACHE,   /* batch._occurred_cache: the dict itself, which _occurred refills in place */
    VALIDATION_ERROR, /* errors.EventValidationError */
    DUMPS,            /* specialise.dumps (orjson.dumps, or None) */
    DUMPS_OPTIONS,    /* specialise.DUMPS_OPTIONS */
    UNSEEN,           /* batch._UNSEEN: the "previous metadata" before the first event */
    N_CONFIG,
};

static PyObject *config[N_CONFIG];

/* interned names ("metadata" is also the path validate_metadata is given), and constants the
 * Python loop spells as literals */
static PyObject *s_id, *s_type, *s_data, *s_occurred_at, *s_schema_version, *s_metadata, *s_fast_plans,
    *s_validate_metadata, *s_get, *s_decode, *s_empty_json, *dumps_kwnames, *int_zero, *int_one;

/* ---- Python's own protocols, for objects that are not the exact built-in types ------------- */

/* `a, b, ... = seq` into n new references, as Python unpacks (and words its errors). A tuple,
 * or a tuple subclass iterating as a tuple (a NamedTuple: a FastPlan), of n items is read
 * directly. */
static int
unpack(PyObject *seq, PyObject **out, Py_ssize_t n)
{
    PyObject *it, *extra;
    Py_ssize_t k;

    if (PyTuple_Check(seq) && Py_TYPE(seq)->tp_iter == PyTuple_Type.tp_iter && PyTuple_GET_SIZE(seq) == n) {
        for (k = 0; k < n; k++) {
            out[k] = Py_NewRef(PyTuple_GET_ITEM(seq, k));
        }
        return 0;
    }
    if ((it = PyObject_GetIter(seq)) == NULL) {
        if (PyErr_ExceptionMatches(PyExc_TypeError) && Py_TYPE(seq)->tp_iter == NULL && !PySequence_Check(seq)) {
            PyErr_Format(PyExc_TypeError, "cannot unpack non-iterable %.200s object", Py_TYPE(seq)->tp_name);
        }
        return -1;
    }
    for (k = 0; k < n; k++) {
        if ((out[k] = PyIter_Next(it)) == NULL) {
            if (!PyErr_Occurred()) {
                PyErr_Format(PyExc_ValueError, "not enough values to unpack (expected %zd, got %zd)", n, k);
            }
            goto error;
        }
    }
    if ((extra = PyIter_Next(it)) != NULL) {
        Py_DECREF(extra);
        PyErr_Format(PyExc_ValueError, "too many values to unpack (expected %zd)", n);
        goto error;
    }
    if (PyErr_Occurred()) {
        goto error;
    }
    Py_DECREF(it);
    return 0;

error:
    while (k > 0) {
        Py_DECREF(out[--k]);
    }
    Py_DECREF(it);
    return -1;
}

/* `mapping.get(key)` as a new reference: an exact dict's lookup, else its own get(). */
static PyObject *
get(PyObject *mapping, PyObject *key)
{
    PyObject *value;

    if (!PyDict_CheckExact(mapping)) {
        return PyObject_CallMethodOneArg(mapping, s_get, key);
    }
    value = PyDict_GetItemWithError(mapping, key);
    if (value == NULL) {
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    }
    return Py_NewRef(value);
}

/* 1 if `id` is an exact str in envelope.CANONICAL_UUID's form (fullmatch: 36 characters,
 * lowercase hex digits, dashes at 8, 13, 18 and 23), 0 if not, -1 on error. */
static int
is_canonical_uuid(PyObject *id)
{
    const Py_UCS1 *text;

    if (!PyUnicode_CheckExact(id)) {
        return 0;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(id) < 0) {
        return -1;
    }
#endif
    if (PyUnicode_GET_LENGTH(id) != UUID_LEN || PyUnicode_KIND(id) != PyUnicode_1BYTE_KIND) {
        return 0;
    }
    text = PyUnicode_1BYTE_DATA(id);
    for (int k = 0; k < UUID_LEN; k++) {
        Py_UCS1 ch = text[k];
        if (k == 8 || k == 13 || k == 18 || k == 23 ? ch != '-'
                                                   : !((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

/* ---- one call ------------------------------------------------------------------------------ */

/* What a call keeps from one event to the next. */
typedef struct {
    PyObject *config[N_CONFIG]; /* owned: a snapshot, so that a configure() from inside a loader
                                   cannot free what the call is using */
    PyObject *catalogue;        /* borrowed: the argument */
    PyObject *plans;            /* owned: catalogue.fast_plans */
    PyObject *prepared;         /* owned: the result */
    PyObject *last_metadata;    /* owned (its address is never another object's while held): the
                                   metadata object last validated, _UNSEEN at first */
    PyObject *metadata_obj, *metadata_json; /* owned: what validate_metadata made of it */
} Call;

static void
call_clear(Call *c)
{
    for (int k = 0; k < N_CONFIG; k++) {
        Py_XDECREF(c->config[k]);
    }
    Py_XDECREF(c->plans);
    Py_XDECREF(c->prepared);
    Py_XDECREF(c->last_metadata);
    Py_XDECREF(c->metadata_obj);
    Py_XDECREF(c->metadata_json);
}

/* One event's values, each a new reference or NULL (event_clear releases them). */
typedef struct {
    PyObject *id, *type, *data, *when, *occurred, *plan, *version, *loaded, *metadata, *data_json, *references;
    PyObject *plan_version, *load, *encode, *refs; /* the plan's fields */
    PyObject *stored, *sort;                       /* occurred[0], occurred[1] */
    int client_id;
} Event;

static void
event_clear(Event *e)
{
    PyObject **fields[] = {
        &e->id, &e->type, &e->data, &e->when, &e->occurred, &e->plan, &e->version, &e->loaded, &e->metadata,
        &e->data_json, &e->references, &e->plan_version, &e->load, &e->encode, &e->refs, &e->stored, &e->sort,
    };

    for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++) {
        Py_CLEAR(*fields[k]);
    }
}

/* The outcome of a step: the event goes on, the batch is left to the full pass (the result
 * is None; no exception is set), or an exception propagates. */
enum { FAILED = -1, NOT_SURE = 0, OK = 1 };

/* catalogue.validate_metadata(metadata, "metadata") into the call's metadata_obj and
 * metadata_json; an EventValidationError (raised by the call or by unpacking what it
 * returns, both inside the Python loop's try) is NOT_SURE. */
static int
validate_metadata(Call *c, PyObject *metadata)
{
    PyObject *args[] = {c->catalogue, metadata, s_metadata}, *pair, *fields[2];
    int failed = 1;

    pair = PyObject_VectorcallMethod(s_validate_metadata, args, 3, NULL);
    if (pair != NULL) {
        failed = unpack(pair, fields, 2) < 0;
        Py_DECREF(pair);
    }
    if (failed) {
        if (PyErr_ExceptionMatches(c->config[VALIDATION_ERROR])) {
            PyErr_Clear();
            return NOT_SURE;
        }
        return FAILED;
    }
    Py_SETREF(c->metadata_obj, fields[0]);
    Py_SETREF(c->metadata_json, fields[1]);
    Py_SETREF(c->last_metadata, Py_NewRef(metadata));
    return OK;
}

/* dumps(loaded, option=DUMPS_OPTIONS).decode() into e->data_json; a TypeError (orjson's
 * JSONEncodeError is one, and so is calling dumps when it is None) is NOT_SURE. */
static int
dumps_text(Call *c, Event *e)
{
    PyObject *args[] = {e->loaded, c->config[DUMPS_OPTIONS]}, *bytes;

    bytes = PyObject_Vectorcall(c->config[DUMPS], args, 1, dumps_kwnames);
    if (bytes != NULL) {
        e->data_json = PyBytes_CheckExact(bytes)
                           ? PyUnicode_DecodeUTF8(PyBytes_AS_STRING(bytes), PyBytes_GET_SIZE(bytes), NULL)
                           : PyObject_CallMethodNoArgs(bytes, s_decode);
        Py_DECREF(bytes);
    }
    if (e->data_json == NULL) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            return NOT_SURE;
        }
        return FAILED;
    }
    return OK;
}

/* (f, loaded[f]) appended to `pairs` if isinstance(loaded.get(f), str). */
static int
add_reference(PyObject *pairs, PyObject *loaded, PyObject *f)
{
    PyObject *value, *pair;
    int is_str, failed;

    if ((value = get(loaded, f)) == NULL) {
        return -1;
    }
    is_str = PyObject_IsInstance(value, (PyObject *)&PyUnicode_Type); /* a str subclass counts */
    Py_DECREF(value);
    if (is_str <= 0) {
        return is_str;
    }
    if ((value = PyObject_GetItem(loaded, f)) == NULL) {
        return -1;
    }
    pair = PyTuple_Pack(2, f, value);
    Py_DECREF(value);
    if (pair == NULL) {
        return -1;
    }
    failed = PyList_Append(pairs, pair);
    Py_DECREF(pair);
    return failed;
}

/* tuple((f, loaded[f]) for f in refs if isinstance(loaded.get(f), str)) if refs else () */
static PyObject *
references(PyObject *loaded, PyObject *refs)
{
    PyObject *pairs, *it, *f, *result = NULL;
    int truth = PyObject_IsTrue(refs);

    if (truth <= 0) {
        return truth < 0 ? NULL : PyTuple_New(0);
    }
    if ((pairs = PyList_New(0)) == NULL) {
        return NULL;
    }
    if ((it = PyObject_GetIter(refs)) != NULL) {
        while ((f = PyIter_Next(it)) != NULL) {
            int failed = add_reference(pairs, loaded, f);
            Py_DECREF(f);
            if (failed) {
                break;
            }
        }
        Py_DECREF(it);
        if (!PyErr_Occurred()) {
            result = PyList_AsTuple(pairs);
        }
    }
    Py_DECREF(pairs);
    return result;
}

/* An event's PreparedEvent fields into `e`, each step where the Python loop takes it. */
static int
prepare_fields(Call *c, PyObject *event, Event *e)
{
    PyObject *fields[4], *equal;
    int status;

    if (Py_TYPE(event) != (PyTypeObject *)c->config[NEW_EVENT]) {
        return NOT_SURE;
    }
    if ((e->id = PyObject_GetAttr(event, s_id)) == NULL || (e->type = PyObject_GetAttr(event, s_type)) == NULL
        || (e->data = PyObject_GetAttr(event, s_data)) == NULL
        || (e->when = PyObject_GetAttr(event, s_occurred_at)) == NULL) {
        return FAILED;
    }
    if (e->id == Py_None) {
        Py_SETREF(e->id, PyObject_CallNoArgs(c->config[NEW_EVENT_ID]));
        if (e->id == NULL) {
            return FAILED;
        }
        e->client_id = 0;
    }
    else if ((status = is_canonical_uuid(e->id)) != 1) {
        return status < 0 ? FAILED : NOT_SURE;
    }
    else {
        e->client_id = 1;
    }
    /* occurred_cache.get(when), plans.get(type), then _occurred(when) on a miss: _occurred
     * runs even when the type has no plan, as in Python */
    if (PyUnicode_CheckExact(e->when) && (e->occurred = get(c->config[OCCURRED_CACHE], e->when)) == NULL) {
        return FAILED;
    }
    if (PyUnicode_CheckExact(e->type) && (e->plan = get(c->plans, e->type)) == NULL) {
        return FAILED;
    }
    if (e->occurred == NULL || e->occurred == Py_None) {
        Py_XDECREF(e->occurred);
        if ((e->occurred = PyObject_CallOneArg(c->config[OCCURRED], e->when)) == NULL) {
            return FAILED;
        }
    }
    if (e->occurred == Py_None || e->plan == NULL || e->plan == Py_None || !PyDict_CheckExact(e->data)) {
        return NOT_SURE;
    }
    if (unpack(e->plan, fields, 4) < 0) {
        return FAILED;
    }
    e->plan_version = fields[0];
    e->load = fields[1];
    e->encode = fields[2];
    e->refs = fields[3];
    if ((e->version = PyObject_GetAttr(event, s_schema_version)) == NULL) {
        return FAILED;
    }
    if (e->version != Py_None) { /* else: an exact int (not a bool) equal to the plan's */
        if (!PyLong_CheckExact(e->version)) {
            return NOT_SURE;
        }
        if ((equal = PyObject_RichCompare(e->version, e->plan_version, Py_EQ)) == NULL) {
            return FAILED;
        }
        status = PyObject_IsTrue(equal);
        Py_DECREF(equal);
        if (status <= 0) {
            return status < 0 ? FAILED : NOT_SURE;
        }
    }
    if ((e->loaded = PyObject_CallOneArg(e->load, e->data)) == NULL) {
        return FAILED;
    }
    if (e->loaded == Py_None) {
        return NOT_SURE;
    }
    if ((e->metadata = PyObject_GetAttr(event, s_metadata)) == NULL) {
        return FAILED;
    }
    if (e->metadata != c->last_metadata) {
        if (e->metadata != Py_None && !PyDict_CheckExact(e->metadata)) {
            return NOT_SURE;
        }
        if ((status = validate_metadata(c, e->metadata)) != OK) {
            return status;
        }
    }
    if (e->encode != Py_None) {
        if ((e->data_json = PyObject_CallOneArg(e->encode, e->loaded)) == NULL) {
            return FAILED;
        }
    }
    else if ((status = dumps_text(c, e)) != OK) {
        return status;
    }
    if ((e->references = references(e->loaded, e->refs)) == NULL) {
        return FAILED;
    }
    if (PyTuple_CheckExact(e->occurred) && PyTuple_GET_SIZE(e->occurred) >= 2) {
        e->stored = Py_NewRef(PyTuple_GET_ITEM(e->occurred, 0));
        e->sort = Py_NewRef(PyTuple_GET_ITEM(e->occurred, 1));
    }
    else if ((e->stored = PyObject_GetItem(e->occurred, int_zero)) == NULL
             || (e->sort = PyObject_GetItem(e->occurred, int_one)) == NULL) {
        return FAILED;
    }
    return OK;
}

/* tuple.__new__(PreparedEvent, (...)) of the event's fields, appended to the result: the
 * tuple subclass allocated by its tp_alloc and filled, as CPython's tuple_subtype_new does. */
static int
append_prepared(Call *c, Event *e)
{
    PyTypeObject *type = (PyTypeObject *)c->config[PREPARED_EVENT];
    PyObject *prepared, *items[PREPARED_LEN] = {
        e->id,     e->client_id ? Py_True : Py_False,
        e->type,   e->plan_version,
        e->stored, e->sort,
        e->loaded, c->metadata_obj,
        e->data_json, c->metadata_json,
        e->references,
    };
    int failed;

    if ((prepared = type->tp_alloc(type, PREPARED_LEN)) == NULL) {
        return FAILED;
    }
    for (int k = 0; k < PREPARED_LEN; k++) {
        PyTuple_SET_ITEM(prepared, k, Py_NewRef(items[k]));
    }
#if PY_VERSION_HEX >= 0x030E0000
    ((PyTupleObject *)prepared)->ob_hash = -1; /* 3.14 caches a tuple's hash; tuple_subtype_new resets it */
#endif
    if (!PyObject_GC_IsTracked(prepared)) { /* PyType_GenericAlloc tracks it already */
        PyObject_GC_Track(prepared);
    }
    failed = PyList_Append(c->prepared, prepared);
    Py_DECREF(prepared);
    return failed ? FAILED : OK;
}

static int
prepare_one(Call *c, PyObject *event)
{
    Event e = {0};
    int status = prepare_fields(c, event, &e);

    if (status == OK) {
        status = append_prepared(c, &e);
    }
    event_clear(&e);
    return status;
}

/* 1 if an id is in `prepared` twice, as len(set(ids)) != len(ids) tells; -1 on error. */
static int
has_duplicate_id(PyObject *prepared)
{
    PyObject *seen = PySet_New(NULL);
    Py_ssize_t n = PyList_GET_SIZE(prepared);
    int duplicate;

    if (seen == NULL) {
        return -1;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        if (PySet_Add(seen, PyTuple_GET_ITEM(PyList_GET_ITEM(prepared, k), 0)) < 0) {
            Py_DECREF(seen);
            return -1;
        }
    }
    duplicate = PySet_GET_SIZE(seen) != n;
    Py_DECREF(seen);
    return duplicate;
}

PyDoc_STRVAR(prepare_fast_doc,
             "prepare_fast(catalogue, events)\n--\n\n"
             "The batch prepared in one lean pass (a list of PreparedEvent), or None where the full\n"
             "pass must decide: events.batch.prepare_fast_py's loop in C, with the same outcome,\n"
             "the objects it passes through and the exceptions it lets through included.\n"
             "Raises RuntimeError if configure() was not called.");

static PyObject *
prepare_fast(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"catalogue", "events", NULL};
    PyObject *catalogue, *events, *it = NULL, *event, *result;
    Call c = {0};
    int status = OK, duplicate;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:prepare_fast", keywords, &catalogue, &events)) {
        return NULL;
    }
    if (config[NEW_EVENT] == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "prepare_fast: events._prepare.configure() was not called");
        return NULL;
    }
    for (int k = 0; k < N_CONFIG; k++) {
        c.config[k] = Py_NewRef(config[k]);
    }
    c.catalogue = catalogue;
    c.last_metadata = Py_NewRef(c.config[UNSEEN]);
    c.metadata_obj = Py_NewRef(Py_None);
    c.metadata_json = Py_NewRef(s_empty_json);
    if ((c.plans = PyObject_GetAttr(catalogue, s_fast_plans)) == NULL || (c.prepared = PyList_New(0)) == NULL
        || (it = PyObject_GetIter(events)) == NULL) {
        goto error;
    }
    /* any iterable, as Python's for-loop: a list is read afresh on every turn (a loader may
     * change it), and the event is held while it is prepared */
    while (status == OK && (event = PyIter_Next(it)) != NULL) {
        status = prepare_one(&c, event);
        Py_DECREF(event);
    }
    Py_CLEAR(it);
    if (PyErr_Occurred()) { /* FAILED, or the iterator raised (NOT_SURE leaves none set) */
        goto error;
    }
    if (status == OK && (duplicate = has_duplicate_id(c.prepared)) != 0) { /* an id twice: the full pass words it */
        if (duplicate < 0) {
            goto error;
        }
        status = NOT_SURE;
    }
    result = Py_NewRef(status == NOT_SURE ? Py_None : c.prepared);
    call_clear(&c);
    return result;

error:
    Py_XDECREF(it);
    call_clear(&c);
    return NULL;
}

PyDoc_STRVAR(configure_doc,
             "configure(NewEvent, PreparedEvent, new_event_id, occurred, occurred_cache,\n"
             "          EventValidationError, dumps, DUMPS_OPTIONS, UNSEEN)\n--\n\n"
             "Hand over the objects events.batch's loop finds as globals (called once, at its import;\n"
             "a later call replaces them). Raises TypeError if NewEvent is not a type, PreparedEvent\n"
             "not a tuple subclass, occurred_cache not a dict or EventValidationError not an exception.");

static PyObject *
configure(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *given[N_CONFIG], *old;

    if (!PyArg_ParseTuple(args, "O!O!OOO!OOOO:configure", &PyType_Type, &given[NEW_EVENT], &PyType_Type,
                          &given[PREPARED_EVENT], &given[NEW_EVENT_ID], &given[OCCURRED], &PyDict_Type,
                          &given[OCCURRED_CACHE], &given[VALIDATION_ERROR], &given[DUMPS], &given[DUMPS_OPTIONS],
                          &given[UNSEEN])) {
        return NULL;
    }
    if (!PyType_IsSubtype((PyTypeObject *)given[PREPARED_EVENT], &PyTuple_Type)) {
        return PyErr_Format(PyExc_TypeError, "configure: PreparedEvent must be a tuple subclass, not %.100s",
                            ((PyTypeObject *)given[PREPARED_EVENT])->tp_name);
    }
    if (!PyDict_CheckExact(given[OCCURRED_CACHE])) { /* the loop reads it as a dict, never through get() */
        return PyErr_Format(PyExc_TypeError, "configure: occurred_cache must be a dict, not %.100s",
                            Py_TYPE(given[OCCURRED_CACHE])->tp_name);
    }
    if (!PyExceptionClass_Check(given[VALIDATION_ERROR])) {
        return PyErr_Format(PyExc_TypeError, "configure: EventValidationError must be an exception class, not %.100s",
                            Py_TYPE(given[VALIDATION_ERROR])->tp_name);
    }
    for (int k = 0; k < N_CONFIG; k++) {
        old = config[k];
        config[k] = Py_NewRef(given[k]);
        Py_XDECREF(old);
    }
    Py_RETURN_NONE;
}

static PyMethodDef prepare_methods[] = {
    {"prepare_fast", (PyCFunction)(void (*)(void))prepare_fast, METH_VARARGS | METH_KEYWORDS, prepare_fast_doc},
    {"configure", configure, METH_VARARGS, configure_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef prepare_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "events._prepare",
    .m_doc = "An append batch prepared in one lean pass, in C: see events.batch.prepare_fast.",
    .m_size = -1,
    .m_methods = prepare_methods,
};

static int
intern(PyObject **name, const char *text)
{
    if (*name == NULL && (*name = PyUnicode_InternFromString(text)) == NULL) {
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC
PyInit__prepare(void)
{
    if (intern(&s_id, "id") < 0 || intern(&s_type, "type") < 0 || intern(&s_data, "data") < 0
        || intern(&s_occurred_at, "occurred_at") < 0 || intern(&s_schema_version, "schema_version") < 0
        || intern(&s_metadata, "metadata") < 0 || intern(&s_fast_plans, "fast_plans") < 0
        || intern(&s_validate_metadata, "validate_metadata") < 0 || intern(&s_get, "get") < 0
        || intern(&s_decode, "decode") < 0 || intern(&s_empty_json, "{}") < 0) {
        return NULL;
    }
    /* interned: orjson.dumps tells its keywords by the interned str's address */
    if (dumps_kwnames == NULL) {
        PyObject *option = PyUnicode_InternFromString("option");
        if (option == NULL || (dumps_kwnames = PyTuple_Pack(1, option)) == NULL) {
            Py_XDECREF(option);
            return NULL;
        }
        Py_DECREF(option);
    }
    if ((int_zero == NULL && (int_zero = PyLong_FromLong(0)) == NULL)
        || (int_one == NULL && (int_one = PyLong_FromLong(1)) == NULL)) {
        return NULL;
    }
    return PyModule_Create(&prepare_module);
}
