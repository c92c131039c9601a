/* The address of an R vector's data, so Python can view it without a copy (see R/python.R,
 * .share_vector, and python/isthmus/io/_buffers.py). The R object is kept alive from Python
 * by a closure that holds it; R's garbage collector never moves objects. */
#include <stdio.h>
#include <R.h>
#include <Rinternals.h>
#include <R_ext/Rdynload.h>

SEXP isthmus_data_address(SEXP x) {
    const void *data = NULL;
    if (XLENGTH(x) > 0) {
        switch (TYPEOF(x)) {
        case REALSXP: data = REAL(x); break;      /* materialises ALTREP vectors */
        case INTSXP:  data = INTEGER(x); break;
        case LGLSXP:  data = LOGICAL(x); break;
        default: error("isthmus: cannot share an R vector of type %s", type2char(TYPEOF(x)));
        }
    }
    char buf[32];
    snprintf(buf, sizeof buf, "%p", data);
    return mkString(buf);
}

static const R_CallMethodDef call_methods[] = {
    {"isthmus_data_address", (DL_FUNC) &isthmus_data_address, 1},
    {NULL, NULL, 0}
};

void R_init_isthmus(DllInfo *dll) {
    R_registerRoutines(dll, NULL, call_methods, NULL, NULL);
    R_useDynamicSymbols(dll, FALSE);
}
