using System.Security.Cryptography;

namespace Opterius.Services.Backups;

/// <summary>
/// A file's content as one tar entry: exactly <see cref="Length"/> bytes (the size its descriptor reported when it was
/// opened), whatever the file does meanwhile — a log that grows is cut there, one that shrinks is padded with zeros —
/// so the entry's header never disagrees with its data. Every byte goes through <paramref name="hashes"/> (the file's
/// own SHA-256 and its part's). Seekable as far as <see cref="System.Formats.Tar.TarWriter"/> asks (length and position),
/// so the writer streams it without buffering.
/// </summary>
internal sealed class ArchivedContent(Stream inner, long length, params IncrementalHash[] hashes) : Stream
{
    private long _position;

    /// <summary>The file ended before its size (it shrank while being read): the rest is zeros.</summary>
    public bool Shrank { get; private set; }

    public override bool CanRead => true;
    public override bool CanSeek => true;
    public override bool CanWrite => false;
    public override long Length => length;

    public override long Position
    {
        get => _position;
        set { if (value != _position) throw new NotSupportedException("an archived file is read once, in order"); }
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var wanted = (int)Math.Min(buffer.Length, length - _position);
        if (wanted <= 0) return 0;
        var span = buffer[..wanted];
        var n = Shrank ? 0 : inner.Read(span);
        if (n == 0)
        {
            Shrank = true;
            span.Clear();
            n = wanted;
        }
        foreach (var h in hashes) h.AppendData(span[..n]);
        _position += n;
        return n;
    }

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>Counts and hashes what goes through it to the archive file: the archive's own size and SHA-256.</summary>
internal sealed class CountingHashStream(Stream inner) : Stream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    public long Written { get; private set; }

    public string Sha256() => Convert.ToHexStringLower(_hash.GetHashAndReset());

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _hash.AppendData(buffer);
        inner.Write(buffer);
        Written += buffer.Length;
    }

    public override void Flush() => inner.Flush();
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => Written; set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) _hash.Dispose();
        base.Dispose(disposing);
    }
}
