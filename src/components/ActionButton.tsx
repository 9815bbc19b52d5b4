import { CommandRegistry } from '@lumino/commands';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import React from 'react';

/**
 * Properties of an action button.
 */
export interface IActionButtonProps {
  commands: CommandRegistry;
  command: string;
  args?: ReadonlyPartialJSONObject;
  label: string;
  /** What the button does, for screen readers and the tooltip. */
  ariaLabel: string;
  disabled?: boolean;
  className?: string;
}

/**
 * A button that runs one of the extension's commands (the palette runs the same ones).
 */
export function ActionButton(props: IActionButtonProps): JSX.Element {
  const { commands, command, args, label, ariaLabel, disabled, className } =
    props;
  return (
    <button
      type="button"
      className={`jp-ModelHub-actionButton${className ? ` ${className}` : ''}`}
      title={ariaLabel}
      aria-label={ariaLabel}
      disabled={disabled}
      onClick={() => void commands.execute(command, args ?? {})}
    >
      {label}
    </button>
  );
}
