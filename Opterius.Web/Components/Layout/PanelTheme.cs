using MudBlazor;

namespace Opterius.Web.Components.Layout;

public static class PanelTheme
{
    public static readonly MudTheme Theme = new()
    {
        PaletteLight = new PaletteLight { Primary = "#1f5fa8", AppbarBackground = "#1f5fa8" },
        PaletteDark = new PaletteDark { Primary = "#6ea8f0" },
    };
}
