"""One reading discipline for every input: sizes checked before allocation, bounded
nesting and decompression, regular files only, clean output errors.

See docs/formats.md ("Reading limits") for what each bound is and why.
"""

from .archive import open_tar, read_member
from .arrays import read_array_file, read_npy, read_npy_stream, read_npz
from .files import (check_regular, check_walk_depth, first_bytes, is_dir, is_regular,
                    open_regular, output_error, output_errors, read_bytes)
from .glob import StarPattern, glob_match
from .jsonread import (describe, expect, expect_keys, expect_shape, expect_str_map,
                       json_depth, load_json, loads_json)
from .limits import (ENV_MAX_BYTES, ENV_MAX_RATIO, Limits, check_nbytes, check_shape,
                     clip_list, get_limits, human, limits, parse_size, set_limits, short_repr)

__all__ = ["ENV_MAX_BYTES", "ENV_MAX_RATIO", "Limits", "check_nbytes", "check_regular",
           "check_shape", "check_walk_depth", "clip_list", "describe", "expect", "expect_keys",
           "expect_shape", "expect_str_map", "first_bytes", "get_limits", "glob_match", "human", "is_dir", "is_regular", "json_depth", "limits", "load_json",
           "loads_json", "open_regular", "open_tar", "output_error", "output_errors",
           "parse_size", "read_array_file", "read_bytes", "read_member", "read_npy",
           "read_npy_stream", "read_npz", "set_limits", "short_repr", "StarPattern"]
