namespace Opterius.Web.Agent;

/// <summary>
/// The <c>Opterius:Agent</c> section, read by both roles. The agent listens on <see cref="Socket"/> and serves
/// root and <see cref="PanelUser"/> only; a panel with <see cref="Socket"/> set reaches every resource through it.
/// </summary>
public sealed class AgentOptions
{
    public const string Section = "Opterius:Agent";

    /// <summary>The agent's Unix socket (<c>/run/opterius/agent.sock</c> in production); empty: resources run in the panel.</summary>
    public string Socket { get; set; } = "";

    /// <summary>The user the panel runs as: the only non-root peer the agent serves; the socket's group is its primary group.</summary>
    public string PanelUser { get; set; } = "";
}
