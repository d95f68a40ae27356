/* zlib, for gzip-compressed IDX files and the model file's CRC-32 (Debian: zlib1g-dev). */
#include <zlib.h>
