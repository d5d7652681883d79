using System.Globalization;
using System.Text.Json;

namespace Opterius.Services.Backups;

/// <summary>
/// The manifest's entries one at a time, in its order, read with <see cref="Utf8JsonReader"/> straight from the archive's
/// last entry (a reader of its own over the same file, skimmed to <c>manifest.json</c>): the manifest is never held
/// whole, so verifying an archive against it holds one entry of each, whatever the file count. A tree part yields its
/// <c>files</c> in order; a part without files (a single-file part) yields itself once its object ends.
/// </summary>
internal sealed class ManifestReader : IDisposable
{
    private readonly BackupArchive.Reader _archive;
    private readonly Stream _json;
    private readonly IEnumerator<ManifestFile> _records;
    private byte[] _buffer = new byte[64 * 1024];
    private int _start, _end;
    private bool _final, _format, _peeked;
    private ManifestFile? _next;
    private JsonReaderState _state;
    private JsonTokenType _token;
    private string? _string;
    private long? _number;

    private ManifestReader(BackupArchive.Reader archive, Stream json)
    {
        (_archive, _json) = (archive, json);
        _records = Records().GetEnumerator();
    }

    /// <summary>Skims the archive to its <c>manifest.json</c> (headers only; nothing is hashed) and reads from there.</summary>
    public static ManifestReader Open(string path)
    {
        var archive = new BackupArchive.Reader(path);
        try
        {
            var first = true;
            while (archive.Next() is var (entry, name))
            {
                if (first && name != BackupArchive.AccountEntry)
                    throw new ArchiveRefusedException($"the archive begins with '{name}', not {BackupArchive.AccountEntry}: refusing it");
                first = false;
                if (name == BackupArchive.ManifestEntry && entry.DataStream is { } data) return new ManifestReader(archive, data);
            }
            throw new ArchiveRefusedException(first ? $"the archive has no {BackupArchive.AccountEntry}: refusing it"
                : $"the archive has no {BackupArchive.ManifestEntry} at its end (cut short?): refusing it");
        }
        catch
        {
            archive.Dispose();
            throw;
        }
    }

    /// <summary>The manifest's next entry without taking it; null past its last.</summary>
    public ManifestFile? Peek()
    {
        if (_peeked) return _next;
        try { _next = _records.MoveNext() ? _records.Current : null; }
        catch (Exception e) when (e is JsonException or FormatException or OverflowException)
        {
            throw new ArchiveRefusedException($"{BackupArchive.ManifestEntry} is not valid: {e.Message}");
        }
        _peeked = true;
        return _next;
    }

    public ManifestFile? Next()
    {
        var next = Peek();
        _peeked = false;
        return next;
    }

    private IEnumerable<ManifestFile> Records()
    {
        Expect(JsonTokenType.StartObject);
        while (Read() && _token == JsonTokenType.PropertyName)
        {
            var property = _string;
            Read();
            if (property == "format")
            {
                if (_number != BackupArchive.Format) throw new ArchiveRefusedException($"{BackupArchive.ManifestEntry} is not format {BackupArchive.Format}: refusing the archive");
                _format = true;
            }
            else if (property == "parts" && _token == JsonTokenType.StartArray)
                while (Read() && _token != JsonTokenType.EndArray)
                {
                    if (_token != JsonTokenType.StartObject) throw new JsonException("a part is not an object");
                    string? path = null, sha = null;
                    long bytes = 0, files = 0;
                    while (Read() && _token == JsonTokenType.PropertyName)
                    {
                        var p = _string;
                        Read();
                        switch (p)
                        {
                            case "path": path = _string; break;
                            case "bytes": bytes = _number ?? 0; break;
                            case "sha256": sha = _string; break;
                            case "files" when _token == JsonTokenType.StartArray:
                                while (Read() && _token != JsonTokenType.EndArray)
                                {
                                    yield return File();
                                    files++;
                                }
                                break;
                            default: Skip(); break;
                        }
                    }
                    if (files == 0) yield return new ManifestFile(path ?? throw new JsonException("a part has no path"), bytes, sha, null, null, null, null);
                }
            else Skip();
        }
        if (_token != JsonTokenType.EndObject || Read()) throw new JsonException("the manifest does not end with its object");
        if (!_format) throw new ArchiveRefusedException($"{BackupArchive.ManifestEntry} is not format {BackupArchive.Format}: refusing the archive");
    }

    /// <summary>One entry of a tree part's <c>files</c> (the reader is on its start).</summary>
    private ManifestFile File()
    {
        if (_token != JsonTokenType.StartObject) throw new JsonException("a file of a part is not an object");
        string? path = null, sha = null, link = null, type = null;
        long size = 0;
        long? mode = null, uid = null, gid = null;
        while (Read() && _token == JsonTokenType.PropertyName)
        {
            var p = _string;
            Read();
            switch (p)
            {
                case "path": path = _string; break;
                case "type": type = _string; break;
                case "size": size = _number ?? 0; break;
                case "sha256": sha = _string; break;
                case "mode": mode = _number; break;
                case "uid": uid = _number; break;
                case "gid": gid = _number; break;
                case "link": link = _string; break;
                default: Skip(); break;
            }
        }
        return new ManifestFile(path ?? throw new JsonException("a file of a part has no path"), size, sha,
            (int?)mode, (int?)uid, (int?)gid, link, type);
    }

    private void Expect(JsonTokenType token)
    {
        if (!Read() || _token != token) throw new JsonException($"expected {token}");
    }

    /// <summary>Past the value the reader is on (an object or array whole), keeping none of it.</summary>
    private void Skip()
    {
        if (_token is not (JsonTokenType.StartObject or JsonTokenType.StartArray)) return;
        var depth = 1;
        while (depth > 0 && Read())
            depth += _token switch { JsonTokenType.StartObject or JsonTokenType.StartArray => 1, JsonTokenType.EndObject or JsonTokenType.EndArray => -1, _ => 0 };
    }

    /// <summary>The next token, its string or number kept; the buffer is refilled (grown for a token longer than it) as needed.</summary>
    private bool Read()
    {
        while (true)
        {
            var reader = new Utf8JsonReader(_buffer.AsSpan(_start, _end - _start), _final, _state);
            if (reader.Read())
            {
                _token = reader.TokenType;
                _string = _token is JsonTokenType.PropertyName or JsonTokenType.String ? reader.GetString() : null;
                // Numbers as the writer writes them, or as strings of digits (as the old JsonSerializer options allowed).
                _number = _token == JsonTokenType.Number ? reader.GetInt64()
                    : _token == JsonTokenType.String && long.TryParse(_string, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) ? n : null;
                _start += (int)reader.BytesConsumed;
                _state = reader.CurrentState;
                return true;
            }
            if (_final) return false;
            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                (_end, _start) = (_end - _start, 0);
            }
            if (_end == _buffer.Length) Array.Resize(ref _buffer, _buffer.Length * 2);
            var read = _json.Read(_buffer, _end, _buffer.Length - _end);
            if (read == 0) _final = true;
            else _end += read;
        }
    }

    public void Dispose()
    {
        _records.Dispose();
        _archive.Dispose();
    }
}
