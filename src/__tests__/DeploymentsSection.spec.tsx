import { CommandRegistry } from '@lumino/commands';
import React from 'react';
// @ts-expect-error: react-dom ships no types here; its server renderer draws a static row.
import { renderToStaticMarkup } from 'react-dom/server';

import { DeploymentsSection } from '../components/DeploymentsSection';
import { IDeploymentStatus, IDeploymentsModel } from '../tokens';

const SVC: IDeploymentStatus = {
  name: 'svc',
  target: 'docker',
  model: 'fraud',
  ref: 'fraud@v0.0.1',
  endpoint: 'http://127.0.0.1:8123',
  desired_version: 'v0.0.1',
  serving_version: 'v0.0.1',
  follow_stage: false,
  revision: 1,
  desired_replicas: 1,
  phase: 'running',
  replicas: [],
  last_error: null,
  traffic: null,
  controller: null
};

/**
 * A deployments model that holds `statuses` and nothing else.
 */
function modelOf(statuses: IDeploymentStatus[]): IDeploymentsModel {
  return {
    deployments: statuses,
    error: null,
    loaded: true,
    busy: [],
    isBusy: () => false,
    drift: () => null,
    health: () => [],
    verdict: () => null
  } as unknown as IDeploymentsModel;
}

/**
 * The section of `statuses`, rendered into a detached element.
 */
function render(statuses: IDeploymentStatus[]): HTMLElement {
  const container = document.createElement('div');
  container.innerHTML = renderToStaticMarkup(
    <DeploymentsSection
      deployments={modelOf(statuses)}
      commands={new CommandRegistry()}
    />
  );
  return container;
}

describe('DeploymentsSection', () => {
  it("shows the server's controller status when there is one", () => {
    const container = render([
      { ...SVC, controller: 'running (pid 123)' },
      { ...SVC, name: 'other', controller: 'not running' },
      { ...SVC, name: 'plain' }
    ]);
    const rows = Array.from(
      container.querySelectorAll('.jp-ModelHub-deploymentRow')
    );
    const controllers = rows.map(
      row => row.querySelector('.jp-ModelHub-controller')?.textContent ?? null
    );
    expect(controllers).toEqual([
      'controller: running (pid 123)',
      'controller: not running',
      null
    ]);
  });

  it('shows no controller line for a server that sends none', () => {
    const older: Partial<IDeploymentStatus> = { ...SVC };
    delete older.controller;
    const container = render([older as IDeploymentStatus]);
    expect(container.querySelector('.jp-ModelHub-controller')).toBeNull();
  });
});
