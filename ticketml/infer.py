"""infer: one `--text` (prints JSON) or a CSV/Parquet `--input_path` streamed in chunks to `--output_path`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from omegaconf import DictConfig
from tqdm import tqdm

from pyfunc.inputs import InputError, check_texts
from ticketml.errors import DataError
from ticketml.io import atomic_path, check_readable_file, table_format
from ticketml.predictor import load_predictor

OUTPUT_COLUMNS = ("predicted_topic", "predicted_priority", "topic_scores", "priority_scores")


def read_chunks(path: Path, chunk_size: int, encoding: str = "utf-8") -> Iterator[pd.DataFrame]:
    """The file in chunks; a file that cannot be read as what it claims to be is a DataError
    naming it (and, for a wrong encoding, the option that fixes it)."""
    try:
        if table_format(path) == "csv":
            yield from pd.read_csv(
                path, dtype=str, keep_default_na=False, chunksize=chunk_size, encoding=encoding
            )
        else:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_size):
                yield batch.to_pandas()
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: the file is empty (no header row)") from exc
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not {encoding} text (byte {exc.object[exc.start : exc.start + 1]!r}); "
            "give its encoding, e.g. --encoding=latin-1"
        ) from exc
    except LookupError as exc:
        raise DataError(f"--encoding={encoding}: {exc}") from exc
    except (pd.errors.ParserError, pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: cannot read as {table_format(path)}: {exc}") from exc


AUTO_ENCODINGS = ("utf-8", "cp1252", "latin-1")  # latin-1 decodes any bytes: the last resort


def detect_encoding(path: Path, block: int = 1 << 20) -> str:
    """`--encoding=auto`: the first of AUTO_ENCODINGS that decodes the whole file (read once in
    binary blocks; a multi-byte character split between blocks is fine)."""
    import codecs

    for name in AUTO_ENCODINGS:
        decoder = codecs.getincrementaldecoder(name)()
        try:
            with open(path, "rb") as f:
                while data := f.read(block):
                    decoder.decode(data)
            decoder.decode(b"", final=True)
            return name
        except UnicodeDecodeError:
            continue
    return AUTO_ENCODINGS[-1]


def check_input(path: Path, text_column: str, encoding: str = "utf-8") -> None:
    """Read the head of the input before the model loads (seconds): an unreadable file or a
    missing text column is reported at once."""
    head = next(read_chunks(path, 5, encoding), pd.DataFrame())
    if text_column not in head.columns:
        raise DataError(
            f"{path}: missing column {text_column!r} (columns found: {list(head.columns)}); "
            "set --text_column"
        )


def count_rows(path: Path, encoding: str = "utf-8") -> int | None:
    """Rows of the input, for the progress bar's total: Parquet's metadata, or one pass of the
    csv module over a CSV (quoted newlines stay in their row; fast beside scoring them); None
    where that pass cannot tell (a field over the csv module's size limit)."""
    if table_format(path) == "parquet":
        return pq.ParquetFile(path).metadata.num_rows
    import csv

    try:
        with open(path, newline="", encoding=encoding, errors="replace") as f:
            return max(0, sum(1 for _ in csv.reader(f)) - 1)  # less the header
    except csv.Error:
        return None


def scores_json(scores: dict[str, float]) -> str:
    """The scores column format of every batch output (infer and score_spark)."""
    return json.dumps(scores, ensure_ascii=False)


def score_frame(
    classifier,
    df: pd.DataFrame,
    text_column: str,
    min_confidence: float | None,
    where: str = "input",
    first_row: int = 0,
    record=None,
) -> pd.DataFrame:
    """The rows with their predictions; a text the served model refuses (pyfunc.inputs: not a
    string, blank, a lone surrogate) stops the run with its file and row number."""
    if text_column not in df.columns:
        raise DataError(
            f"missing column {text_column!r} (columns found: {list(df.columns)}); set --text_column"
        )
    texts = df[text_column].tolist()
    try:
        check_texts(texts)
    except InputError as exc:
        raise DataError(
            f"{where}, row {first_row + exc.index + 1} ({text_column!r}): the text {exc.reason}"
        ) from exc
    rows = classifier.predict(texts, min_confidence=min_confidence)
    if record is not None:  # the prediction log (ticketml.monitoring)
        record(rows, texts, first_row)
    out = df.copy()
    out["predicted_topic"] = [r["topic"] for r in rows]
    out["predicted_priority"] = [r["priority"] for r in rows]
    out["topic_scores"] = [scores_json(r["topic_scores"]) for r in rows]
    out["priority_scores"] = [scores_json(r["priority_scores"]) for r in rows]
    if min_confidence is not None:
        out["needs_review"] = [r["needs_review"] for r in rows]
    return out


def predict_file(
    classifier,
    input_path: str,
    output_path: str,
    text_column: str = "text",
    chunk_size: int = 10000,
    min_confidence: float | None = None,
    encoding: str = "utf-8",
    record=None,
) -> int:
    """Stream input → predictions → output (temp file, renamed when complete). Returns rows
    written. `record(rows, texts, first_row)` is called with each chunk's predictions."""
    src = check_readable_file(input_path)
    table_format(src)
    out_kind = table_format(output_path)
    if Path(output_path).resolve() == src.resolve():
        raise DataError(f"--output_path={output_path} is the input file: choose another path")
    total, writer = 0, None
    with (
        atomic_path(output_path) as tmp,
        tqdm(total=count_rows(src, encoding), unit="rows", desc="infer") as bar,
    ):
        for chunk in read_chunks(src, chunk_size, encoding):
            scored = score_frame(
                classifier, chunk, text_column, min_confidence, str(src), total, record
            )
            if out_kind == "csv":
                scored.to_csv(tmp, mode="a", header=total == 0, index=False)
            else:
                table = pa.Table.from_pandas(scored, preserve_index=False)
                writer = writer or pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table.cast(writer.schema))
            total += len(scored)
            bar.update(len(scored))
        if writer:
            writer.close()
        elif out_kind == "parquet":  # empty input: still a valid file with the columns
            pd.DataFrame(columns=[text_column, *OUTPUT_COLUMNS]).to_parquet(tmp, index=False)
    return total


def review_threshold(cfg: DictConfig, min_confidence: str | None) -> float | None:
    """`--min_confidence` when given, else `infer.min_confidence` (null = no needs_review)."""
    return float(min_confidence) if min_confidence is not None else cfg.infer.min_confidence


def run_infer(
    cfg: DictConfig,
    text: str | None = None,
    input_path: str | None = None,
    output_path: str | None = None,
    model_uri: str | None = None,
    text_column: str = "text",
    min_confidence: str | None = None,
    encoding: str | None = None,
) -> object:
    if (text is None) == (input_path is None):
        raise DataError('give either --text="..." or --input_path=FILE --output_path=FILE')
    threshold = review_threshold(cfg, min_confidence)
    encoding = encoding or str(cfg.infer.encoding)
    if input_path is not None:  # checked before the model loads (seconds)
        if not output_path:
            raise DataError("--input_path needs --output_path=FILE.parquet|.csv")
        table_format(output_path)
        src = check_readable_file(input_path)
        if encoding == "auto" and table_format(src) == "csv":
            encoding = detect_encoding(src)
            print(f"infer: reading {src} as {encoding} (--encoding=auto)")
        check_input(src, text_column, encoding)
    if text is not None:  # checked before the model loads (seconds)
        try:
            check_texts([text])
        except InputError as exc:
            raise DataError(f"--text {exc.reason}") from exc
    classifier, identity = load_predictor(cfg, model_uri)
    plog, record, batch_id = batch_log(cfg, classifier, identity)
    try:
        if text is not None:
            rows = classifier.predict([text], min_confidence=threshold)
            if record is not None:
                record(rows, [text], 0)
            print(json.dumps(rows[0], ensure_ascii=False, indent=2))
            return rows[0]
        n = predict_file(
            classifier,
            input_path,
            output_path,
            text_column,
            int(cfg.infer.chunk_size),
            threshold,
            encoding,
            record,
        )
    finally:
        if plog is not None:
            plog.close()
    logged = f"; logged as {batch_id}:<row>" if plog is not None else ""
    print(f"infer: {n} rows → {output_path} (model: {identity.describe()}{logged})")
    return n


def batch_log(cfg: DictConfig, classifier, identity):
    """(PredictionLog, record callback, batch id) for serve.prediction_log, or Nones when off:
    batch predictions are logged as `<batch id>:<row>` (row from 0), waiting for room in the
    queue rather than dropping."""
    if not cfg.serve.prediction_log:
        return None, None, None
    from ticketml.monitoring.features import vocabulary_of
    from ticketml.monitoring.store import PredictionLog, new_request_id

    plog = PredictionLog.from_config(cfg)
    batch_id, vocab = new_request_id(), vocabulary_of(classifier)

    def record(rows, texts, first_row):
        ids = [f"{batch_id}:{first_row + i}" for i in range(len(rows))]
        plog.submit_wait(rows, texts, ids, identity, "infer", vocab)

    return plog, record, batch_id
