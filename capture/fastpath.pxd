# C types for the optional Cython build of fastpath.py (same source; see setup.py, which also turns
# off bounds and negative-index checks: every index is checked against the frame's length first).
cimport cython


cdef class ScanState:
    cdef public Py_ssize_t packets
    cdef public Py_ssize_t nbytes
    cdef public double last_ts


@cython.locals(ent=tuple, cls=dict, ip_len=Py_ssize_t, flags=int)
cdef bint _bypass(
    const unsigned char[:] data,
    bytes buf,
    Py_ssize_t f,
    Py_ssize_t caplen,
    double ts,
    dict fast,
    object table,
) except -1


cpdef bint bypass_frame(bytes buf, double ts, object table) except -1


@cython.locals(
    data="const unsigned char[:]",
    packets=Py_ssize_t,
    nbytes=Py_ssize_t,
    last_ts=double,
    sec="unsigned long long",
    frac="unsigned long long",
    caplen=Py_ssize_t,
    end=Py_ssize_t,
    ts=double,
    fast=dict,
)
cpdef Py_ssize_t scan_pcap(
    ScanState st,
    bytes buf,
    Py_ssize_t pos,
    Py_ssize_t blen,
    bint big_endian,
    long long scale,
    object table,
    double stop_ts,
) except -1


@cython.locals(
    n=Py_ssize_t,
    packets=Py_ssize_t,
    nbytes=Py_ssize_t,
    last_ts=double,
    caplen=Py_ssize_t,
    ts=double,
    fast=dict,
    buf=bytes,
)
cpdef Py_ssize_t scan_frames(ScanState st, list frames, Py_ssize_t i, object table, double stop_ts) except -1
