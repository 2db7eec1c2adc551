// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Roles
/// @notice Minimal role-based access control: an admin grants and revokes
/// roles; functions check them with `onlyRole`.
abstract contract Roles {
    /// @notice The role that manages every other role.
    bytes32 public constant ADMIN = keccak256("ADMIN");

    mapping(bytes32 role => mapping(address account => bool)) private _roles;

    /// @notice `account` lacks `role`.
    error Unauthorized(bytes32 role, address account);

    /// @notice `role` was granted to `account`.
    event RoleGranted(bytes32 indexed role, address indexed account);
    /// @notice `role` was revoked from `account`.
    event RoleRevoked(bytes32 indexed role, address indexed account);

    constructor(address admin) {
        _roles[ADMIN][admin] = true;
        emit RoleGranted(ADMIN, admin);
    }

    modifier onlyRole(bytes32 role) {
        if (!_roles[role][msg.sender]) revert Unauthorized(role, msg.sender);
        _;
    }

    /// @notice Whether `account` has `role`.
    function hasRole(bytes32 role, address account) public view returns (bool) {
        return _roles[role][account];
    }

    /// @notice Grants `role` to `account` (admin only).
    function grantRole(bytes32 role, address account) external onlyRole(ADMIN) {
        _roles[role][account] = true;
        emit RoleGranted(role, account);
    }

    /// @notice Revokes `role` from `account` (admin only).
    function revokeRole(bytes32 role, address account) external onlyRole(ADMIN) {
        _roles[role][account] = false;
        emit RoleRevoked(role, account);
    }
}

/// @title Guarded
/// @notice A reentrancy guard for functions that send value.
abstract contract Guarded {
    uint256 private _entered = 1;

    /// @notice A guarded function was re-entered.
    error Reentrancy();
    /// @notice Sending value to `to` failed.
    error TransferFailed(address to, uint256 amount);

    modifier nonReentrant() {
        if (_entered != 1) revert Reentrancy();
        _entered = 2;
        _;
        _entered = 1;
    }

    function _send(address to, uint256 amount) internal {
        if (amount == 0) return;
        (bool ok,) = payable(to).call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }
}
