// MARK: - Data sets
import Nudge

// @c-section data

/// Samples loaded from files: features (row-major float32) and optional int32 labels.
/// Thread safety: read-only after loading; any number of threads may read it at once.
public typealias nudge_dataset = OpaquePointer

private func borrowDataset(_ handle: nudge_dataset?) throws(NudgeError) -> Dataset {
    try borrow(handle, .dataset, as: Dataset.self, "dataset")
}

/// Loads samples from IDX files, the format of MNIST and Fashion-MNIST, plain or gzip-compressed.
/// Pixels (unsigned bytes) become floats in [0, 1], one sample per row; labels become int32.
/// Both headers are checked before any data is read: sizes against each other and against the
/// files (a plain file holds exactly what its header declares); memory then grows with the data
/// actually read, and reading stops where the header says the data ends. The same as
/// nudge_dataset_load_idx_with_options() with NULL options.
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
        try loadIDX(images_path, labels_path, nil, out_dataset)
    }
}

/// How nudge_dataset_load_idx_with_options() reads IDX files. Start from nudge_idx_options_init(),
/// then set the fields you need: the library reads only the first `struct_size` bytes.
public struct nudge_idx_options {
    /// Set by nudge_idx_options_init() to sizeof(nudge_idx_options).
    public var struct_size: UInt32 = UInt32(MemoryLayout<nudge_idx_options>.stride)
    /// The most bytes the data set may take (4 per pixel, 4 per label); a larger one is refused
    /// with NUDGE_ERR_OUT_OF_MEMORY, from the headers, before any data is read. 0: no limit but the
    /// machine's memory. Default 0.
    public var max_bytes: UInt64 = 0
}

/// Sets every field of an IDX options struct to its default, and struct_size to the size both
/// sides know: `nudge_idx_options_init(&options, sizeof options);`
/// @param[out] options The struct to fill.
/// @c-param options nudge_idx_options *
/// @param[in] options_size sizeof(nudge_idx_options) in the caller's header; at least 8.
/// @return NUDGE_OK or NUDGE_ERR_INVALID_ARGUMENT (options is NULL, or options_size is too small).
@_cdecl("nudge_idx_options_init")
public func nudge_idx_options_init(_ options: UnsafeMutableRawPointer?, _ options_size: UInt) -> nudge_status {
    guarded("nudge_idx_options_init") { () throws(NudgeError) in
        try initializeOptions(options, options_size, nudge_idx_options(), "nudge_idx_options")
    }
}

/// Loads samples from IDX files as nudge_dataset_load_idx() does, within the limits of `options`.
/// @param[in] images_path An IDX file of unsigned bytes; its first dimension counts samples.
/// @param[in] labels_path A one-dimensional IDX file of unsigned byte labels, or NULL.
/// @param[in] options From nudge_idx_options_init(), or NULL for the defaults.
/// @c-param options const nudge_idx_options *
/// @param[out] out_dataset Receives the data set.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT (also a bad struct_size), NUDGE_ERR_IO,
///         NUDGE_ERR_FORMAT, NUDGE_ERR_SHAPE, NUDGE_ERR_OUT_OF_MEMORY (also: larger than
///         options->max_bytes, naming the limit).
/// Ownership: the caller owns *out_dataset and releases it with nudge_dataset_free().
@_cdecl("nudge_dataset_load_idx_with_options")
public func nudge_dataset_load_idx_with_options(_ images_path: UnsafePointer<CChar>?, _ labels_path: UnsafePointer<CChar>?,
                                                _ options: UnsafeRawPointer?,
                                                _ out_dataset: UnsafeMutablePointer<nudge_dataset?>?) -> nudge_status {
    guarded("nudge_dataset_load_idx_with_options") { () throws(NudgeError) in
        try loadIDX(images_path, labels_path, options, out_dataset)
    }
}

private func loadIDX(_ images_path: UnsafePointer<CChar>?, _ labels_path: UnsafePointer<CChar>?, _ options: UnsafeRawPointer?,
                     _ out_dataset: UnsafeMutablePointer<nudge_dataset?>?) throws(NudgeError) {
    let images = try string(images_path, "images_path")
    let labels = labels_path == nil ? nil : try string(labels_path, "labels_path")
    let out = try required(out_dataset, "out_dataset")
    var o = nudge_idx_options()
    try copyOptions(options, into: &o, "nudge_idx_options_init")
    let maxBytes = Int(clamping: o.max_bytes)
    out.pointee = makeHandle(try IDX.load(images: images, labels: labels, maxBytes: maxBytes), .dataset)
}

/// Copies a caller's options struct over the defaults in `o`: the bytes its struct_size covers
/// (NULL leaves the defaults); a struct_size that ends inside one of its fields is refused.
private func copyOptions<Options: SizedCStruct>(_ pointer: UnsafeRawPointer?, into o: inout Options,
                                                _ initFunction: String) throws(NudgeError) {
    guard let pointer else { return }
    let size = Int(pointer.load(as: UInt32.self))
    guard size >= MemoryLayout<UInt32>.size, size <= 1 << 16 else {
        throw NudgeError(.invalidArgument, "options->struct_size is \(size); call \(initFunction)() first")
    }
    try checkStructSize(size, Options.fieldOffsets, Options.self, "options", initFunction)
    withUnsafeMutableBytes(of: &o) { dst in
        dst.copyMemory(from: UnsafeRawBufferPointer(start: pointer, count: min(size, MemoryLayout<Options>.size)))
    }
}

// MARK: CSV reading

/// Whether the first row of a CSV file is a header (nudge_csv_options.header).
public typealias nudge_csv_header = Int32
/// The first row is a header if any of its non-empty cells is not a number.
public let NUDGE_CSV_HEADER_AUTO: nudge_csv_header = 0
/// The first row is a header.
public let NUDGE_CSV_HEADER_PRESENT: nudge_csv_header = 1
/// There is no header: the first row is data.
public let NUDGE_CSV_HEADER_NONE: nudge_csv_header = 2

/// nudge_csv_options.label_column: the header column named "label" (ASCII letters in any case) if
/// there is exactly one, otherwise none.
public let NUDGE_CSV_LABEL_AUTO: Int32 = -1
/// nudge_csv_options.label_column: no label column; every column is a feature.
public let NUDGE_CSV_LABEL_NONE: Int32 = -2
/// nudge_csv_options.weight_column: no weight column (unless weight_name names one).
public let NUDGE_CSV_WEIGHT_NONE: Int32 = -1

/// How nudge_dataset_load_csv() reads a file. Start from nudge_csv_options_init(), then set the
/// fields you need: the library reads only the first `struct_size` bytes.
public struct nudge_csv_options {
    /// Set by nudge_csv_options_init() to sizeof(nudge_csv_options).
    public var struct_size: UInt32 = UInt32(MemoryLayout<nudge_csv_options>.stride)
    /// A NUDGE_CSV_HEADER_ value. Default NUDGE_CSV_HEADER_AUTO.
    public var header: nudge_csv_header = 0
    /// The 0-based column of the class labels, NUDGE_CSV_LABEL_AUTO or NUDGE_CSV_LABEL_NONE.
    /// Default NUDGE_CSV_LABEL_AUTO.
    public var label_column: Int32 = -1
    /// 0 accepts any label from 0 to INT32_MAX; above 0, every label must be below it. Default 0.
    public var class_count: UInt32 = 0
    /// The exact header name of the label column (UTF-8), or NULL. When set, label_column must be
    /// NUDGE_CSV_LABEL_AUTO and the file must have a header. Read during the call only. Default NULL.
    public var label_name: UnsafePointer<CChar>? = nil
    /// The character between fields: ASCII, not a double quote, CR, LF or NUL. Default ','.
    public var delimiter: CChar = 44
    /// The most bytes the values may take (4 per feature, label and weight); a larger file is
    /// refused with NUDGE_ERR_OUT_OF_MEMORY, naming the limit, at the row that would pass it and
    /// before memory for it is allocated. 0: no limit but the machine's memory. Default 0.
    public var max_bytes: UInt64 = 0
    /// 0-based indexes of columns to leave out (an id column): neither features, labels nor
    /// weights, and their cells are not read as numbers (any text but a NUL byte). NULL when
    /// ignore_column_count is 0. Read during the call only. Default NULL.
    public var ignore_columns: UnsafePointer<Int32>? = nil
    /// The number of entries of ignore_columns, at most 1048576. Default 0.
    public var ignore_column_count: UInt = 0
    /// Exact header names (UTF-8) of columns to leave out, as ignore_columns; the file must have a
    /// header. A column may be given once, by index or by name, and may be neither the label nor
    /// the weight column; NUDGE_CSV_LABEL_AUTO then passes over it. NULL when ignore_name_count is 0.
    /// Read during the call only. Default NULL.
    public var ignore_names: UnsafePointer<UnsafePointer<CChar>?>? = nil
    /// The number of entries of ignore_names, at most 1048576. Default 0.
    public var ignore_name_count: UInt = 0
    /// The 0-based column of per-sample weights, or NUDGE_CSV_WEIGHT_NONE. Weights are decimal
    /// numbers, finite and 0 or more (else NUDGE_ERR_FORMAT naming the line and column), read
    /// with nudge_dataset_weights(); the column is not a feature. Default NUDGE_CSV_WEIGHT_NONE.
    public var weight_column: Int32 = -1
    /// The exact header name of the weight column (UTF-8), or NULL. When set, weight_column must be
    /// NUDGE_CSV_WEIGHT_NONE and the file must have a header. Read during the call only. Default NULL.
    public var weight_name: UnsafePointer<CChar>? = nil
}

/// Sets every field of a CSV options struct to its default, and struct_size to the size both sides
/// know: `nudge_csv_options_init(&options, sizeof options);`
/// @param[out] options The struct to fill.
/// @c-param options nudge_csv_options *
/// @param[in] options_size sizeof(nudge_csv_options) in the caller's header; at least 8.
/// @return NUDGE_OK or NUDGE_ERR_INVALID_ARGUMENT (options is NULL, or options_size is too small).
@_cdecl("nudge_csv_options_init")
public func nudge_csv_options_init(_ options: UnsafeMutableRawPointer?, _ options_size: UInt) -> nudge_status {
    guarded("nudge_csv_options_init") { () throws(NudgeError) in
        try initializeOptions(options, options_size, nudge_csv_options(), "nudge_csv_options")
    }
}

/// The core's CSV options from a caller's struct (the bytes its struct_size covers over the
/// defaults; NULL means the defaults), naming any field out of range.
private func csvOptions(_ pointer: UnsafeRawPointer?) throws(NudgeError) -> CSV.Options {
    var o = nudge_csv_options()
    try copyOptions(pointer, into: &o, "nudge_csv_options_init")
    var options = CSV.Options()
    switch o.header {
    case NUDGE_CSV_HEADER_AUTO: options.header = .auto
    case NUDGE_CSV_HEADER_PRESENT: options.header = .present
    case NUDGE_CSV_HEADER_NONE: options.header = .absent
    default:
        throw NudgeError(.invalidArgument, "options->header is \(o.header), not a NUDGE_CSV_HEADER_ value (0 to 2)")
    }
    if let name = o.label_name {
        guard o.label_column == NUDGE_CSV_LABEL_AUTO else {
            throw NudgeError(.invalidArgument, "options->label_name and options->label_column (\(o.label_column)) both choose the label column; leave label_column at NUDGE_CSV_LABEL_AUTO")
        }
        options.labelColumn = .name(try string(name, "options->label_name"))
    } else {
        switch o.label_column {
        case NUDGE_CSV_LABEL_AUTO: options.labelColumn = .auto
        case NUDGE_CSV_LABEL_NONE: options.labelColumn = .none
        case 0...: options.labelColumn = .index(Int(o.label_column))
        default:
            throw NudgeError(.invalidArgument, "options->label_column is \(o.label_column): use a 0-based column index, NUDGE_CSV_LABEL_AUTO or NUDGE_CSV_LABEL_NONE")
        }
    }
    options.delimiter = UInt8(bitPattern: o.delimiter)
    options.classCount = Int(o.class_count)
    options.maxBytes = Int(clamping: o.max_bytes)
    options.ignoreColumns = try ignoredColumns(o)
    options.weightColumn = try weightColumn(o)
    do { try options.validate() } catch { throw error.prefixed("options->") }
    return options
}

/// The columns options->ignore_columns and options->ignore_names leave out, indexes first.
private func ignoredColumns(_ o: nudge_csv_options) throws(NudgeError) -> [CSV.Options.Column] {
    for (field, count) in [("ignore_column_count", o.ignore_column_count), ("ignore_name_count", o.ignore_name_count)]
    where count > UInt(CSV.maxColumns) {
        throw NudgeError(.invalidArgument, "options->\(field) is \(count); a row has at most \(CSV.maxColumns) columns")
    }
    var columns: [CSV.Options.Column] = []
    if o.ignore_column_count > 0 {
        guard let indexes = o.ignore_columns else {
            throw NudgeError(.invalidArgument, "options->ignore_columns is NULL, but ignore_column_count is \(o.ignore_column_count)")
        }
        for i in 0..<Int(o.ignore_column_count) {
            guard indexes[i] >= 0 else {
                throw NudgeError(.invalidArgument, "options->ignore_columns[\(i)] is \(indexes[i]); column indexes are 0 or more")
            }
            columns.append(.index(Int(indexes[i])))
        }
    }
    if o.ignore_name_count > 0 {
        guard let names = o.ignore_names else {
            throw NudgeError(.invalidArgument, "options->ignore_names is NULL, but ignore_name_count is \(o.ignore_name_count)")
        }
        for i in 0..<Int(o.ignore_name_count) {
            columns.append(.name(try string(names[i], "options->ignore_names[\(i)]")))
        }
    }
    return columns
}

/// The column options->weight_column or options->weight_name chooses, if any.
private func weightColumn(_ o: nudge_csv_options) throws(NudgeError) -> CSV.Options.Column? {
    if let name = o.weight_name {
        guard o.weight_column == NUDGE_CSV_WEIGHT_NONE else {
            throw NudgeError(.invalidArgument, "options->weight_name and options->weight_column (\(o.weight_column)) both choose the weight column; leave weight_column at NUDGE_CSV_WEIGHT_NONE")
        }
        return .name(try string(name, "options->weight_name"))
    }
    switch o.weight_column {
    case NUDGE_CSV_WEIGHT_NONE: return nil
    case 0...: return .index(Int(o.weight_column))
    default:
        throw NudgeError(.invalidArgument, "options->weight_column is \(o.weight_column): use a 0-based column index or NUDGE_CSV_WEIGHT_NONE")
    }
}

/// Loads samples from a CSV file of numbers (RFC 4180), plain or gzip-compressed (recognised by
/// its content), one sample per row, features in the file's column order as float32 values as
/// written (not rescaled). With the defaults it reads Kaggle's digit-recognizer files: train.csv
/// (header "label,pixel0,...,pixel783") gives 784 features and labels, test.csv features only.
///
/// Accepted: fields in double quotes, with "" for a quote and delimiters or line breaks inside;
/// LF, CRLF or CR line ends; a UTF-8 byte order mark; spaces and tabs around a value; blank lines
/// at the end; no line break after the last row; several gzip members one after another. A value
/// is a decimal number (an optional sign, digits with an optional point, an optional exponent:
/// 12, -0.5, .5, 1.5e-3, +7), correctly rounded to float32 whatever the process's locale. A label
/// is a decimal number whose exact value is an integer from 0 (3, also 3.0 or 3e0); a weight is a
/// value from 0. Columns given in ignore_columns or ignore_names are left out unread (an id, a
/// name). Every row has as many fields as the first.
///
/// Refused (NUDGE_ERR_FORMAT, with a message "PATH:LINE:COLUMN: ..." naming the 1-based physical
/// line and column, and the column's header name if it has one; file content in a message is
/// escaped, such as \0 for NUL): an empty file, a header without data rows, a row with another
/// number of fields, an empty or non-numeric cell (hexadecimal such as 0x10 included), a NUL byte
/// in any cell, nan, inf and values beyond float32's range (1e39), a label that is not exactly an
/// integer (2.5, 2.0000000000000001, 1e-400), negative, at least class_count or above INT32_MAX,
/// a negative weight, a quote left open, a blank line before more data, a field longer than
/// 1048576 bytes; a file that is UTF-16 or UTF-32 text, an IDX file or a Nudge model file (said as
/// such, at 1:1); a corrupt or truncated gzip stream, and bytes after the gzip data that are not
/// another member.
///
/// Memory: the file is streamed through a 1 MiB buffer; only the values are kept. A file of more
/// than 2^32 values or than options->max_bytes, or of rows of more than 2^20 fields, is refused
/// with NUDGE_ERR_OUT_OF_MEMORY before memory for it is allocated.
/// @param[in] path The file.
/// @param[in] options From nudge_csv_options_init(), or NULL for the defaults.
/// @c-param options const nudge_csv_options *
/// @param[out] out_dataset Receives the data set; its labels are NULL when no column holds labels,
///             its weights NULL without a weight column.
/// @return NUDGE_OK; NUDGE_ERR_INVALID_ARGUMENT (a NULL or invalid argument or option, a label,
///         weight or ignored column past the last one or not in the header, a column ignored twice
///         or given two roles); NUDGE_ERR_IO (the file cannot be opened or read, or is not a
///         regular file); NUDGE_ERR_FORMAT; NUDGE_ERR_OUT_OF_MEMORY.
/// Ownership: the caller owns *out_dataset and releases it with nudge_dataset_free().
@_cdecl("nudge_dataset_load_csv")
public func nudge_dataset_load_csv(_ path: UnsafePointer<CChar>?, _ options: UnsafeRawPointer?,
                                   _ out_dataset: UnsafeMutablePointer<nudge_dataset?>?) -> nudge_status {
    guarded("nudge_dataset_load_csv") { () throws(NudgeError) in
        let file = try string(path, "path")
        let out = try required(out_dataset, "out_dataset")
        let o = try csvOptions(options)
        out.pointee = makeHandle(try CSV.load(path: file, options: o), .dataset)
    }
}

/// Releases a data set; pointers from nudge_dataset_features(), nudge_dataset_labels() and
/// nudge_dataset_weights() become invalid. NULL, and handles already freed, are ignored.
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

/// Borrows the per-sample weights: count floats (finite, 0 or more), or NULL when the data set has
/// none (an IDX data set, or a CSV file read without a weight column).
/// @param[in] dataset The data set.
/// @param[out] out_weights Receives a pointer owned by the data set, valid until nudge_dataset_free(),
///             or NULL.
/// @return NUDGE_OK or NUDGE_ERR_INVALID_ARGUMENT.
@_cdecl("nudge_dataset_weights")
public func nudge_dataset_weights(_ dataset: nudge_dataset?, _ out_weights: UnsafeMutablePointer<UnsafePointer<Float>?>?) -> nudge_status {
    guarded("nudge_dataset_weights") { () throws(NudgeError) in
        let d = try borrowDataset(dataset)
        try required(out_weights, "out_weights").pointee = d.weightPointer
    }
}
