/* array.h - ARRAY_SIZE, the number of elements of an array (not of a pointer: the compiler
 * rejects a pointer argument). The project's only definition. */
#ifndef ER_ARRAY_H
#define ER_ARRAY_H

/* 0 * sizeof(struct{...}) fails to compile when a is a pointer (its type equals &a[0]'s). */
#define ARRAY_SIZE(a)                                                                              \
    (sizeof(a) / sizeof((a)[0]) +                                                                  \
     0 * sizeof(struct {                                                                           \
         int x : __builtin_types_compatible_p(__typeof__(a), __typeof__(&(a)[0])) ? -1 : 1;        \
     }))

#endif
