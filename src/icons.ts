import { LabIcon } from '@jupyterlab/ui-components';

import modelHubSvg from '../style/icons/modelhub.svg';

/**
 * The ModelHub icon of the sidebar tab.
 */
export const modelHubIcon = new LabIcon({
  name: 'jupyter-modelhub:icon',
  svgstr: modelHubSvg
});
