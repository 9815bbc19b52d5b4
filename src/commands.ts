/**
 * Identifiers of the commands added by the extension.
 */
export namespace CommandIDs {
  /** Open (activate) the ModelHub sidebar panel. */
  export const openPanel = 'modelhub:open-panel';

  /** Fetch the model list from the server now. */
  export const refresh = 'modelhub:refresh';
}
