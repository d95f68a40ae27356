"""The raw layer: finds libnudge.so, declares every C function of include/nudge.h, and mirrors its
structs. Each declaration sits under its C prototype, so a review is a diff against the header
(tests/test_abi.py checks both directions)."""

import ctypes
import os
import subprocess
import sys
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char, c_char_p, c_double, c_float, c_int32,
                    c_size_t, c_uint32, c_uint64, c_void_p)
from pathlib import Path

from . import _options

#: The C ABI this package was written for (NUDGE_ABI_VERSION in include/nudge.h; both generated).
from ._version import ABI_VERSION
from ._version import __version__ as PACKAGE_VERSION

# Status codes (nudge_status).
OK = 0
ERR_INVALID_ARGUMENT = 1
ERR_SHAPE = 2
ERR_CAPACITY = 3
ERR_OUT_OF_MEMORY = 4
ERR_IO = 5
ERR_FORMAT = 6
ERR_VERSION = 7
ERR_NOT_FINITE = 8
ERR_CANCELLED = 9
ERR_INTERNAL = 10
ERR_NOT_FOUND = 11
ERR_COLLECTIVE = 12

ACTIVATIONS = {"identity": 0, "sigmoid": 1, "tanh": 2, "relu": 3, "leaky_relu": 4, "softmax": 5}
# The training options' enumerations, from the option table (_options.CHOICES).
LOSSES = _options.CHOICES["nudge_loss"]
OPTIMIZERS = _options.CHOICES["nudge_optimizer"]
SCHEDULES = _options.CHOICES["nudge_schedule"]
NORMALIZATIONS = _options.CHOICES["nudge_normalization"]
STOP_REASONS = {0: "completed", 1: "early_stopped", 2: "cancelled", 3: "not_finite"}
# nudge_data_layout: NUDGE_DATA_REPLICATED / NUDGE_DATA_SHARDED (nudge_collective.data).
DATA_LAYOUTS = {"replicated": 0, "sharded": 1}


# Opaque handles: typed pointers, so that ctypes refuses to pass one kind as another.
class nudge_network(Structure):
    pass


class nudge_trainer(Structure):
    pass


class nudge_dataset(Structure):
    pass


class nudge_epoch_report(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("epoch", c_uint32),
        ("epochs", c_uint32),
        ("improved", c_int32),
        ("train_loss", c_double),
        ("train_accuracy", c_double),
        ("validation_loss", c_double),
        ("validation_accuracy", c_double),
        ("seconds", c_double),
        ("learning_rate", c_double),
    ]


class nudge_batch_report(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("epoch", c_uint32),
        ("batch", c_uint32),
        ("batch_count", c_uint32),
        ("loss", c_double),
    ]


# typedef int32_t (*nudge_progress_fn)(const nudge_epoch_report *report, void *user_data);
nudge_progress_fn = CFUNCTYPE(c_int32, POINTER(nudge_epoch_report), c_void_p)
# typedef int32_t (*nudge_batch_fn)(const nudge_batch_report *report, void *user_data);
nudge_batch_fn = CFUNCTYPE(c_int32, POINTER(nudge_batch_report), c_void_p)


# The C type names of the option table's fields (_options.C_FIELDS) as ctypes types.
C_TYPES = {
    "uint32_t": c_uint32, "int32_t": c_int32, "uint64_t": c_uint64, "size_t": c_size_t,
    "float": c_float, "double": c_double, "void *": c_void_p,
    "const float *": POINTER(c_float), "const int32_t *": POINTER(c_int32),
    "nudge_progress_fn": nudge_progress_fn, "nudge_batch_fn": nudge_batch_fn,
}


class nudge_train_options(Structure):
    # Laid out field by field from the option table (Sources/nudge-options/Table.swift, via _options.py).
    _fields_ = [(name, C_TYPES[c_type]) for name, c_type in _options.C_FIELDS]


class nudge_train_report(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("stop_reason", c_int32),
        ("epochs_run", c_uint32),
        ("best_epoch", c_uint32),
        ("best_loss", c_double),
        ("train_loss", c_double),
        ("train_accuracy", c_double),
        ("validation_loss", c_double),
        ("validation_accuracy", c_double),
        ("seconds", c_double),
    ]


class nudge_regression_metrics(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("mse", c_double),
        ("mae", c_double),
        ("r2", c_double),
    ]


# -- CSV reading (nudge_csv_options, nudge_dataset_load_csv) -------------------------------------

# nudge_csv_header: NUDGE_CSV_HEADER_AUTO / _PRESENT / _NONE.
CSV_HEADERS = {"auto": 0, "present": 1, "none": 2}
# nudge_csv_options.label_column: NUDGE_CSV_LABEL_AUTO / NUDGE_CSV_LABEL_NONE, or a 0-based index.
CSV_LABEL_AUTO = -1
CSV_LABEL_NONE = -2
# nudge_csv_options.weight_column: NUDGE_CSV_WEIGHT_NONE, or a 0-based index.
CSV_WEIGHT_NONE = -1


class nudge_csv_options(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("header", c_int32),
        ("label_column", c_int32),
        ("class_count", c_uint32),
        ("label_name", c_char_p),
        ("delimiter", c_char),
        ("max_bytes", c_uint64),
        ("ignore_columns", POINTER(c_int32)),
        ("ignore_column_count", c_size_t),
        ("ignore_names", POINTER(c_char_p)),
        ("ignore_name_count", c_size_t),
        ("weight_column", c_int32),
        ("weight_name", c_char_p),
    ]


class nudge_idx_options(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("max_bytes", c_uint64),
    ]


# -- data-parallel training and checkpoints (nudge_collective, nudge_trainer_position) -------------

# typedef int32_t (*nudge_allreduce_fn)(float *buffer, size_t count, void *context);
nudge_allreduce_fn = CFUNCTYPE(c_int32, POINTER(c_float), c_size_t, c_void_p)


class nudge_collective(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("rank", c_int32),
        ("size", c_int32),
        ("data", c_int32),
        ("allreduce", nudge_allreduce_fn),
        ("context", c_void_p),
    ]


class nudge_trainer_position(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("in_run", c_int32),
        ("finished", c_int32),
        ("epochs_done", c_uint32),
        ("steps", c_uint64),
    ]


STRUCTS = {cls.__name__: cls for cls in
           (nudge_epoch_report, nudge_batch_report, nudge_train_options, nudge_train_report, nudge_csv_options,
            nudge_idx_options, nudge_collective, nudge_trainer_position, nudge_regression_metrics)}

_network_p = POINTER(nudge_network)
_trainer_p = POINTER(nudge_trainer)
_dataset_p = POINTER(nudge_dataset)
_float_p = POINTER(c_float)
_int32_p = POINTER(c_int32)
_size_p = POINTER(c_size_t)
_double_p = POINTER(c_double)

#: name -> (restype, argtypes), in the order of include/nudge.h.
PROTOTYPES = {
    # const char *nudge_last_error(void);
    "nudge_last_error": (c_char_p, []),
    # const char *nudge_status_name(nudge_status status);
    "nudge_status_name": (c_char_p, [c_int32]),
    # const char *nudge_version_string(void);
    "nudge_version_string": (c_char_p, []),
    # int32_t nudge_abi_version(void);
    "nudge_abi_version": (c_int32, []),
    # nudge_status nudge_set_num_threads(size_t count);
    "nudge_set_num_threads": (c_int32, [c_size_t]),
    # size_t nudge_get_num_threads(void);
    "nudge_get_num_threads": (c_size_t, []),
    # nudge_status nudge_network_create(const size_t *layer_sizes, size_t layer_count,
    #     const nudge_activation *activations, uint64_t seed, nudge_network **out_network);
    "nudge_network_create": (c_int32, [_size_p, c_size_t, _int32_p, c_uint64, POINTER(_network_p)]),
    # void nudge_network_free(nudge_network *network);
    "nudge_network_free": (None, [_network_p]),
    # nudge_status nudge_network_clone(const nudge_network *network, nudge_network **out_network);
    "nudge_network_clone": (c_int32, [_network_p, POINTER(_network_p)]),
    # nudge_status nudge_network_input_size(const nudge_network *network, size_t *out_size);
    "nudge_network_input_size": (c_int32, [_network_p, _size_p]),
    # nudge_status nudge_network_output_size(const nudge_network *network, size_t *out_size);
    "nudge_network_output_size": (c_int32, [_network_p, _size_p]),
    # nudge_status nudge_network_layer_count(const nudge_network *network, size_t *out_count);
    "nudge_network_layer_count": (c_int32, [_network_p, _size_p]),
    # nudge_status nudge_network_layer_sizes(const nudge_network *network, size_t *sizes, size_t capacity);
    "nudge_network_layer_sizes": (c_int32, [_network_p, _size_p, c_size_t]),
    # nudge_status nudge_network_activations(const nudge_network *network, nudge_activation *activations, size_t capacity);
    "nudge_network_activations": (c_int32, [_network_p, _int32_p, c_size_t]),
    # nudge_status nudge_network_parameter_count(const nudge_network *network, size_t *out_count);
    "nudge_network_parameter_count": (c_int32, [_network_p, _size_p]),
    # nudge_status nudge_network_get_parameters(const nudge_network *network, float *parameters, size_t capacity);
    "nudge_network_get_parameters": (c_int32, [_network_p, _float_p, c_size_t]),
    # nudge_status nudge_network_set_parameters(nudge_network *network, const float *parameters, size_t count);
    "nudge_network_set_parameters": (c_int32, [_network_p, _float_p, c_size_t]),
    # nudge_status nudge_network_set_metadata(nudge_network *network, const char *key, const char *value);
    "nudge_network_set_metadata": (c_int32, [_network_p, c_char_p, c_char_p]),
    # nudge_status nudge_network_get_metadata(const nudge_network *network, const char *key, char *buffer,
    #     size_t capacity, size_t *out_length);
    "nudge_network_get_metadata": (c_int32, [_network_p, c_char_p, POINTER(c_char), c_size_t, _size_p]),
    # nudge_status nudge_network_metadata_count(const nudge_network *network, size_t *out_count);
    "nudge_network_metadata_count": (c_int32, [_network_p, _size_p]),
    # nudge_status nudge_network_metadata_key(const nudge_network *network, size_t index, char *buffer,
    #     size_t capacity, size_t *out_length);
    "nudge_network_metadata_key": (c_int32, [_network_p, c_size_t, POINTER(c_char), c_size_t, _size_p]),
    # nudge_status nudge_network_set_normalization(nudge_network *network, const float *offset, const float *scale,
    #     size_t count);
    "nudge_network_set_normalization": (c_int32, [_network_p, _float_p, _float_p, c_size_t]),
    # nudge_status nudge_network_get_normalization(const nudge_network *network, float *offset, float *scale,
    #     size_t capacity, size_t *out_count);
    "nudge_network_get_normalization": (c_int32, [_network_p, _float_p, _float_p, c_size_t, _size_p]),
    # nudge_status nudge_network_fit_normalization(nudge_network *network, const float *inputs, size_t sample_count,
    #     nudge_normalization kind);
    "nudge_network_fit_normalization": (c_int32, [_network_p, _float_p, c_size_t, c_int32]),
    # nudge_status nudge_predict(const nudge_network *network, const float *inputs, size_t sample_count,
    #     float *outputs, size_t output_capacity);
    "nudge_predict": (c_int32, [_network_p, _float_p, c_size_t, _float_p, c_size_t]),
    # nudge_status nudge_classify(const nudge_network *network, const float *inputs, size_t sample_count,
    #     int32_t *labels, size_t label_capacity);
    "nudge_classify": (c_int32, [_network_p, _float_p, c_size_t, _int32_p, c_size_t]),
    # nudge_status nudge_evaluate(const nudge_network *network, const float *inputs, const float *targets,
    #     size_t sample_count, nudge_loss loss, double *out_loss, double *out_accuracy);
    "nudge_evaluate": (c_int32, [_network_p, _float_p, _float_p, c_size_t, c_int32, _double_p, _double_p]),
    # nudge_status nudge_evaluate_labels(const nudge_network *network, const float *inputs, const int32_t *labels,
    #     size_t sample_count, nudge_loss loss, double *out_loss, double *out_accuracy);
    "nudge_evaluate_labels": (c_int32, [_network_p, _float_p, _int32_p, c_size_t, c_int32, _double_p, _double_p]),
    # nudge_status nudge_gradient(const nudge_network *network, const float *inputs, const float *targets,
    #     size_t sample_count, nudge_loss loss, float *gradient, size_t gradient_capacity, double *out_loss);
    "nudge_gradient": (c_int32, [_network_p, _float_p, _float_p, c_size_t, c_int32, _float_p, c_size_t, _double_p]),
    # nudge_status nudge_evaluate_weighted(const nudge_network *network, const float *inputs, const float *targets,
    #     const float *weights, size_t sample_count, nudge_loss loss, double *out_loss, double *out_accuracy);
    "nudge_evaluate_weighted": (c_int32, [_network_p, _float_p, _float_p, _float_p, c_size_t, c_int32, _double_p,
                                          _double_p]),
    # nudge_status nudge_evaluate_labels_weighted(const nudge_network *network, const float *inputs,
    #     const int32_t *labels, const float *weights, size_t sample_count, nudge_loss loss, double *out_loss,
    #     double *out_accuracy);
    "nudge_evaluate_labels_weighted": (c_int32, [_network_p, _float_p, _int32_p, _float_p, c_size_t, c_int32,
                                                 _double_p, _double_p]),
    # nudge_status nudge_gradient_weighted(const nudge_network *network, const float *inputs, const float *targets,
    #     const float *weights, size_t sample_count, nudge_loss loss, float *gradient, size_t gradient_capacity,
    #     double *out_loss);
    "nudge_gradient_weighted": (c_int32, [_network_p, _float_p, _float_p, _float_p, c_size_t, c_int32, _float_p,
                                          c_size_t, _double_p]),
    # nudge_status nudge_evaluate_regression(const nudge_network *network, const float *inputs, const float *targets,
    #     size_t sample_count, nudge_regression_metrics *out_metrics);
    "nudge_evaluate_regression": (c_int32, [_network_p, _float_p, _float_p, c_size_t, POINTER(nudge_regression_metrics)]),
    # nudge_status nudge_train_options_init(nudge_train_options *options, size_t options_size);
    "nudge_train_options_init": (c_int32, [POINTER(nudge_train_options), c_size_t]),
    # nudge_status nudge_train(nudge_network *network, const float *inputs, const float *targets,
    #     size_t sample_count, const nudge_train_options *options, nudge_train_report *report);
    "nudge_train": (c_int32, [_network_p, _float_p, _float_p, c_size_t, POINTER(nudge_train_options),
                              POINTER(nudge_train_report)]),
    # nudge_status nudge_train_labels(nudge_network *network, const float *inputs, const int32_t *labels,
    #     size_t sample_count, const nudge_train_options *options, nudge_train_report *report);
    "nudge_train_labels": (c_int32, [_network_p, _float_p, _int32_p, c_size_t, POINTER(nudge_train_options),
                                     POINTER(nudge_train_report)]),
    # nudge_status nudge_learning_rate_at(const nudge_train_options *options, uint64_t step, size_t steps_per_epoch,
    #     float *out_rate);
    "nudge_learning_rate_at": (c_int32, [POINTER(nudge_train_options), c_uint64, c_size_t, _float_p]),
    # nudge_status nudge_collective_init(nudge_collective *collective, size_t collective_size);
    "nudge_collective_init": (c_int32, [POINTER(nudge_collective), c_size_t]),
    # nudge_status nudge_trainer_set_collective(nudge_trainer *trainer, const nudge_collective *collective);
    "nudge_trainer_set_collective": (c_int32, [_trainer_p, POINTER(nudge_collective)]),
    # nudge_status nudge_trainer_set_checkpoint(nudge_trainer *trainer, const char *path, uint64_t every_steps);
    "nudge_trainer_set_checkpoint": (c_int32, [_trainer_p, c_char_p, c_uint64]),
    # nudge_status nudge_trainer_save(const nudge_trainer *trainer, const char *path);
    "nudge_trainer_save": (c_int32, [_trainer_p, c_char_p]),
    # nudge_status nudge_trainer_load(const char *path, nudge_trainer **out_trainer);
    "nudge_trainer_load": (c_int32, [c_char_p, POINTER(_trainer_p)]),
    # nudge_status nudge_trainer_get_network(const nudge_trainer *trainer, nudge_network **out_network);
    "nudge_trainer_get_network": (c_int32, [_trainer_p, POINTER(_network_p)]),
    # nudge_status nudge_trainer_get_position(const nudge_trainer *trainer, nudge_trainer_position *out_position);
    "nudge_trainer_get_position": (c_int32, [_trainer_p, POINTER(nudge_trainer_position)]),
    # nudge_status nudge_trainer_gradient(nudge_trainer *trainer, const float *inputs, const float *targets,
    #     size_t sample_count, float *gradient, size_t gradient_count, double *out_loss);
    "nudge_trainer_gradient": (c_int32, [_trainer_p, _float_p, _float_p, c_size_t, _float_p, c_size_t, _double_p]),
    # nudge_status nudge_trainer_gradient_labels(nudge_trainer *trainer, const float *inputs, const int32_t *labels,
    #     size_t sample_count, float *gradient, size_t gradient_count, double *out_loss);
    "nudge_trainer_gradient_labels": (c_int32, [_trainer_p, _float_p, _int32_p, c_size_t, _float_p, c_size_t,
                                                _double_p]),
    # nudge_status nudge_trainer_apply_gradient(nudge_trainer *trainer, const float *gradient, size_t gradient_count);
    "nudge_trainer_apply_gradient": (c_int32, [_trainer_p, _float_p, c_size_t]),
    # nudge_status nudge_trainer_create(nudge_network *network, const nudge_train_options *options,
    #     nudge_trainer **out_trainer);
    "nudge_trainer_create": (c_int32, [_network_p, POINTER(nudge_train_options), POINTER(_trainer_p)]),
    # void nudge_trainer_free(nudge_trainer *trainer);
    "nudge_trainer_free": (None, [_trainer_p]),
    # nudge_status nudge_trainer_step(nudge_trainer *trainer, const float *inputs, const float *targets,
    #     size_t sample_count, double *out_loss);
    "nudge_trainer_step": (c_int32, [_trainer_p, _float_p, _float_p, c_size_t, _double_p]),
    # nudge_status nudge_trainer_step_labels(nudge_trainer *trainer, const float *inputs, const int32_t *labels,
    #     size_t sample_count, double *out_loss);
    "nudge_trainer_step_labels": (c_int32, [_trainer_p, _float_p, _int32_p, c_size_t, _double_p]),
    # nudge_status nudge_trainer_step_weighted(nudge_trainer *trainer, const float *inputs, const float *targets,
    #     const float *weights, size_t sample_count, double *out_loss);
    "nudge_trainer_step_weighted": (c_int32, [_trainer_p, _float_p, _float_p, _float_p, c_size_t, _double_p]),
    # nudge_status nudge_trainer_step_labels_weighted(nudge_trainer *trainer, const float *inputs,
    #     const int32_t *labels, const float *weights, size_t sample_count, double *out_loss);
    "nudge_trainer_step_labels_weighted": (c_int32, [_trainer_p, _float_p, _int32_p, _float_p, c_size_t,
                                                     _double_p]),
    # nudge_status nudge_trainer_train(nudge_trainer *trainer, const float *inputs, const float *targets,
    #     size_t sample_count, const nudge_train_options *options, nudge_train_report *report);
    "nudge_trainer_train": (c_int32, [_trainer_p, _float_p, _float_p, c_size_t, POINTER(nudge_train_options),
                                      POINTER(nudge_train_report)]),
    # nudge_status nudge_trainer_train_labels(nudge_trainer *trainer, const float *inputs, const int32_t *labels,
    #     size_t sample_count, const nudge_train_options *options, nudge_train_report *report);
    "nudge_trainer_train_labels": (c_int32, [_trainer_p, _float_p, _int32_p, c_size_t,
                                             POINTER(nudge_train_options), POINTER(nudge_train_report)]),
    # nudge_status nudge_save(const nudge_network *network, const char *path);
    "nudge_save": (c_int32, [_network_p, c_char_p]),
    # nudge_status nudge_load(const char *path, nudge_network **out_network);
    "nudge_load": (c_int32, [c_char_p, POINTER(_network_p)]),
    # nudge_status nudge_save_to_buffer(const nudge_network *network, void *buffer, size_t capacity, size_t *out_size);
    "nudge_save_to_buffer": (c_int32, [_network_p, c_void_p, c_size_t, _size_p]),
    # nudge_status nudge_load_from_buffer(const void *buffer, size_t size, nudge_network **out_network);
    "nudge_load_from_buffer": (c_int32, [c_void_p, c_size_t, POINTER(_network_p)]),
    # nudge_status nudge_export_onnx(const nudge_network *network, const char *path);
    "nudge_export_onnx": (c_int32, [_network_p, c_char_p]),
    # nudge_status nudge_export_onnx_to_buffer(const nudge_network *network, void *buffer, size_t capacity,
    #     size_t *out_size);
    "nudge_export_onnx_to_buffer": (c_int32, [_network_p, c_void_p, c_size_t, _size_p]),
    # nudge_status nudge_import_onnx(const char *path, nudge_network **out_network);
    "nudge_import_onnx": (c_int32, [c_char_p, POINTER(_network_p)]),
    # nudge_status nudge_import_onnx_from_buffer(const void *buffer, size_t size, nudge_network **out_network);
    "nudge_import_onnx_from_buffer": (c_int32, [c_void_p, c_size_t, POINTER(_network_p)]),
    # nudge_status nudge_dataset_load_idx(const char *images_path, const char *labels_path, nudge_dataset **out_dataset);
    "nudge_dataset_load_idx": (c_int32, [c_char_p, c_char_p, POINTER(_dataset_p)]),
    # nudge_status nudge_idx_options_init(nudge_idx_options *options, size_t options_size);
    "nudge_idx_options_init": (c_int32, [POINTER(nudge_idx_options), c_size_t]),
    # nudge_status nudge_dataset_load_idx_with_options(const char *images_path, const char *labels_path,
    #     const nudge_idx_options *options, nudge_dataset **out_dataset);
    "nudge_dataset_load_idx_with_options": (c_int32, [c_char_p, c_char_p, POINTER(nudge_idx_options),
                                                      POINTER(_dataset_p)]),
    # nudge_status nudge_csv_options_init(nudge_csv_options *options, size_t options_size);
    "nudge_csv_options_init": (c_int32, [POINTER(nudge_csv_options), c_size_t]),
    # nudge_status nudge_dataset_load_csv(const char *path, const nudge_csv_options *options,
    #     nudge_dataset **out_dataset);
    "nudge_dataset_load_csv": (c_int32, [c_char_p, POINTER(nudge_csv_options), POINTER(_dataset_p)]),
    # void nudge_dataset_free(nudge_dataset *dataset);
    "nudge_dataset_free": (None, [_dataset_p]),
    # nudge_status nudge_dataset_count(const nudge_dataset *dataset, size_t *out_count);
    "nudge_dataset_count": (c_int32, [_dataset_p, _size_p]),
    # nudge_status nudge_dataset_feature_count(const nudge_dataset *dataset, size_t *out_count);
    "nudge_dataset_feature_count": (c_int32, [_dataset_p, _size_p]),
    # nudge_status nudge_dataset_features(const nudge_dataset *dataset, const float **out_features);
    "nudge_dataset_features": (c_int32, [_dataset_p, POINTER(_float_p)]),
    # nudge_status nudge_dataset_labels(const nudge_dataset *dataset, const int32_t **out_labels);
    "nudge_dataset_labels": (c_int32, [_dataset_p, POINTER(_int32_p)]),
    # nudge_status nudge_dataset_weights(const nudge_dataset *dataset, const float **out_weights);
    "nudge_dataset_weights": (c_int32, [_dataset_p, POINTER(_float_p)]),
}


class LibraryNotFoundError(OSError):
    """libnudge.so could not be found or loaded, or is not the C ABI this package was written for;
    the message lists every path tried, or names the library, its ABI version and how to fix it."""


HERE = Path(__file__).resolve().parent
#: The package's own copy: the one in an installed wheel, or the one `pip install` bundled.
OWN_COPY = HERE / "libnudge.so"
ORIGIN_ENV, ORIGIN_OWN = "NUDGE_LIBRARY", "the package's copy"


def _candidates():
    """Where to look, in order: $NUDGE_LIBRARY, the package's own copy, and when the package is
    imported from a clone (bindings/python/nudge), the repository's builds."""
    env = os.environ.get("NUDGE_LIBRARY")
    if env:
        yield Path(env), ORIGIN_ENV
    yield OWN_COPY, ORIGIN_OWN
    root = HERE.parent.parent.parent
    if (root / "Package.swift").exists():
        yield root / ".build" / "release" / "libnudge.so", "the repository's release build"
        yield root / ".build" / "debug" / "libnudge.so", "the repository's debug build"


def _load():
    tried = []
    for path, origin in _candidates():
        if not path.exists():
            tried.append(f"{path} ({origin}): not found")
        else:
            path = path.absolute()  # dlopen searches the system folders, not the current one, for a bare name
            try:
                return ctypes.CDLL(str(path)), path, origin
            except OSError as error:
                tried.append(f"{path} ({origin}): {error}")
        if origin == ORIGIN_ENV:
            break  # an explicit choice that fails (missing or unloadable) is not silently replaced
    raise LibraryNotFoundError(
        "cannot load libnudge.so; tried:\n  " + "\n  ".join(tried)
        + "\nSet NUDGE_LIBRARY to its path, or build it with `make` in the repository.")


def _identity(lib):
    """(ABI version or None when the library has no nudge_abi_version, version string or None)."""
    try:
        abi = lib.nudge_abi_version
    except AttributeError:
        return None, None
    abi.restype, abi.argtypes = c_int32, []
    try:
        version = lib.nudge_version_string
        version.restype, version.argtypes = c_char_p, []
        return abi(), version().decode(errors="replace")
    except AttributeError:
        return abi(), None


# Reads another library's identity in a child process, so that this one does not map a second copy
# of libnudge.so (and of OpenBLAS) only to write an error message.
_PROBE = """import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
lib.nudge_abi_version.restype = ctypes.c_int32
lib.nudge_version_string.restype = ctypes.c_char_p
print(lib.nudge_abi_version(), lib.nudge_version_string().decode())
"""


def _probe(path):
    """(ABI version, version string) of the library at `path`, or None if it cannot be read."""
    if not sys.executable:
        return None
    try:
        result = subprocess.run([sys.executable, "-I", "-c", _PROBE, str(path)], capture_output=True, text=True,
                                timeout=60)
        abi, version = result.stdout.split()
        return int(abi), version
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def _mismatch(path, origin, abi, version):
    """The error for a library of another C ABI: both libraries, both versions, and the fix."""
    wanted = f"C ABI version {ABI_VERSION} (nudge {PACKAGE_VERSION})"
    found = "no nudge_abi_version: it is no libnudge.so" if abi is None else f"C ABI version {abi}"
    lines = [f"{path} ({origin}) has {found}" + (f" (library {version})" if version else "")
             + f", but this nudge package ({PACKAGE_VERSION}, {HERE}) was written for C ABI version {ABI_VERSION}."]
    if origin == ORIGIN_ENV and OWN_COPY.exists() and OWN_COPY.resolve() != path.resolve():
        own = _probe(OWN_COPY)
        lines.append("The package's own library, " + (
            f"{OWN_COPY}, has C ABI version {own[0]} (library {own[1]})." if own
            else f"{OWN_COPY}, could not be read."))
        lines.append(f"Fix: unset NUDGE_LIBRARY to use the package's own library, or update {path} "
                     f"to a libnudge.so of {wanted}.")
    elif origin == ORIGIN_ENV:
        lines.append(f"Fix: point NUDGE_LIBRARY at a libnudge.so of {wanted}, or update {path}.")
    elif origin == ORIGIN_OWN:
        lines.append("Fix: reinstall the package, whose library comes with it (`pip install --force-reinstall`), "
                     "or set NUDGE_LIBRARY to a libnudge.so of " + wanted + ".")
    else:
        lines.append("Fix: rebuild it with `make lib` in the repository, or set NUDGE_LIBRARY to a libnudge.so of "
                     + wanted + ".")
    return "\n".join(lines)


def _declare(lib, path, origin):
    for name, (restype, argtypes) in PROTOTYPES.items():
        try:
            function = getattr(lib, name)
        except AttributeError:
            raise LibraryNotFoundError(f"{path} ({origin}) has C ABI version {ABI_VERSION} but no {name}: "
                                       "it is a build of other sources than this package's; rebuild it or "
                                       "reinstall the package") from None
        function.restype = restype
        function.argtypes = argtypes
    return lib


lib, path, origin = _load()
# The ABI first: a library of another ABI may lack functions that _declare would ask for.
_abi, _library_version = _identity(lib)
if _abi != ABI_VERSION:
    raise LibraryNotFoundError(_mismatch(path, origin, _abi, _library_version))
_declare(lib, path, origin)
