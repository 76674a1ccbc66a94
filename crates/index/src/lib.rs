//! Vector search: exact multi-threaded SIMD top-k over face templates
