// MARK: - Data sets
import Nudge

private func borrowDataset(_ handle: nudge_dataset?) throws(NudgeError) -> Dataset {
    try borrow(handle, .dataset, as: Dataset.self, "dataset")
}

/// Loads samples from IDX files, the format of MNIST and Fashion-MNIST, plain or gzip-compressed.
/// Pixels (unsigned bytes) become floats in [0, 1], one sample per row; labels become int32.
/// Sizes in the headers are checked against the files before anything is allocated.
/// @param[in] images_path An IDX file of unsigned bytes; its first dimension counts samples, the
///            others (28 x 28 for MNIST) are flattened into features.
/// @param[in] labels_path A one-dimensional IDX file of unsigned byte labels, or NULL.
/// @param[out] out_dataset Receives the data set.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_IO, NUDGE_ERR_FORMAT, NUDGE_ERR_SHAPE
///         (label and image counts differ), NUDGE_ERR_OUT_OF_MEMORY.
/// Ownership: the caller owns *out_dataset and releases it with nudge_dataset_free().
@_cdecl("nudge_dataset_load_idx")
public func nudge_dataset_load_idx(_ images_path: UnsafePointer<CChar>?, _ labels_path: UnsafePointer<CChar>?,
                                   _ out_dataset: UnsafeMutablePointer<nudge_dataset?>?) -> nudge_status {
    guarded("nudge_dataset_load_idx") { () throws(NudgeError) in
        let images = try string(images_path, "images_path")
        let labels = labels_path == nil ? nil : try string(labels_path, "labels_path")
        let out = try required(out_dataset, "out_dataset")
        out.pointee = makeHandle(try IDX.load(images: images, labels: labels), .dataset)
    }
}

/// Releases a data set; pointers from nudge_dataset_features() and nudge_dataset_labels() become
/// invalid. NULL, and handles already freed, are ignored.
/// @param[in,out] dataset The data set, or NULL.
@_cdecl("nudge_dataset_free")
public func nudge_dataset_free(_ dataset: nudge_dataset?) {
    releaseHandle(dataset, .dataset)
}

/// The number of samples.
/// @param[in] dataset The data set.
/// @param[out] out_count Receives the count.
/// @return NUDGE_OK or NUDGE_ERR_INVALID_ARGUMENT.
@_cdecl("nudge_dataset_count")
public func nudge_dataset_count(_ dataset: nudge_dataset?, _ out_count: UnsafeMutablePointer<UInt>?) -> nudge_status {
    guarded("nudge_dataset_count") { () throws(NudgeError) in
        let d = try borrowDataset(dataset)
        try required(out_count, "out_count").pointee = UInt(d.count)
    }
}

/// The number of features per sample (784 for MNIST).
/// @param[in] dataset The data set.
/// @param[out] out_count Receives the count.
/// @return NUDGE_OK or NUDGE_ERR_INVALID_ARGUMENT.
@_cdecl("nudge_dataset_feature_count")
public func nudge_dataset_feature_count(_ dataset: nudge_dataset?, _ out_count: UnsafeMutablePointer<UInt>?) -> nudge_status {
    guarded("nudge_dataset_feature_count") { () throws(NudgeError) in
        let d = try borrowDataset(dataset)
        try required(out_count, "out_count").pointee = UInt(d.featureCount)
    }
}

/// Borrows the features: count x feature count floats, row-major.
/// @param[in] dataset The data set.
/// @param[out] out_features Receives a pointer owned by the data set, valid until nudge_dataset_free().
/// @return NUDGE_OK or NUDGE_ERR_INVALID_ARGUMENT.
@_cdecl("nudge_dataset_features")
public func nudge_dataset_features(_ dataset: nudge_dataset?, _ out_features: UnsafeMutablePointer<UnsafePointer<Float>?>?) -> nudge_status {
    guarded("nudge_dataset_features") { () throws(NudgeError) in
        let d = try borrowDataset(dataset)
        try required(out_features, "out_features").pointee = d.featurePointer
    }
}

/// Borrows the labels: count int32 values, or NULL when the data set has none.
/// @param[in] dataset The data set.
/// @param[out] out_labels Receives a pointer owned by the data set, valid until nudge_dataset_free(),
///             or NULL.
/// @return NUDGE_OK or NUDGE_ERR_INVALID_ARGUMENT.
@_cdecl("nudge_dataset_labels")
public func nudge_dataset_labels(_ dataset: nudge_dataset?, _ out_labels: UnsafeMutablePointer<UnsafePointer<Int32>?>?) -> nudge_status {
    guarded("nudge_dataset_labels") { () throws(NudgeError) in
        let d = try borrowDataset(dataset)
        try required(out_labels, "out_labels").pointee = d.labelPointer
    }
}
