// The kernels compiled for scalar (see kernels-impl.h; binding.gyp gives this file its compiler flags).
#define LS_ISA_SCALAR 1
#define LS_NS isa_scalar
#include "kernels-impl.h"
