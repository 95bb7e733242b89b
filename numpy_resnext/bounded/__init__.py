"""One reading discipline for every input: sizes checked before allocation, bounded
nesting and decompression, one reading budget per load, regular files only, clean output
errors; and the memory budget computations are checked against.

See docs/formats.md ("Reading limits", "Memory") for what each bound is and why.
"""

from .archive import open_tar
from .arrays import NpzMembers, npz_names, read_array_file, read_npy, read_npy_stream, read_npz
from .budget import charge, check_whole, one_load
from .files import (check_output_target, check_regular, check_walk_depth, first_bytes, is_dir,
                    is_regular, name_of, open_regular, output_error, output_errors, read_bytes)
from .glob import StarPattern, glob_match
from .jsonread import (describe, expect, expect_keys, expect_shape, expect_str_map,
                       json_depth, load_json, loads_json)
from .limits import (ENV_MAX_BYTES, ENV_MAX_RATIO, Limits, check_nbytes, check_shape,
                     clip_list, get_limits, human, limits, parse_size, set_limits, short_repr)
from .memory import (ENV_MAX_MEMORY, available_memory, check_memory, memory_budget,
                     set_memory_budget)
from .zips import open_zip

__all__ = ["ENV_MAX_BYTES", "ENV_MAX_MEMORY", "ENV_MAX_RATIO", "Limits", "NpzMembers", "StarPattern",
           "available_memory", "charge", "check_memory", "check_nbytes", "check_output_target",
           "check_regular", "check_shape", "check_walk_depth", "check_whole", "clip_list",
           "describe", "expect", "expect_keys", "expect_shape", "expect_str_map", "first_bytes",
           "get_limits", "glob_match", "human", "is_dir", "is_regular", "json_depth", "limits",
           "load_json", "loads_json", "memory_budget", "name_of", "npz_names", "one_load",
           "open_regular", "open_tar", "open_zip", "output_error", "output_errors",
           "parse_size", "read_array_file", "read_bytes", "read_npy",
           "read_npy_stream", "read_npz", "set_limits", "set_memory_budget", "short_repr"]
